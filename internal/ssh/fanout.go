package ssh

import (
	"context"
	"sync"
)

// FanOut runs fn for i in 0..n-1, at most limit at once (all at once when
// limit <= 0), waits for all of them and returns their errors by index. Once
// ctx has ended no new fn starts; those not started get ctx's error.
func FanOut(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	if limit <= 0 || limit > n {
		limit = n
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		// A free slot and an ended ctx may both be ready: ctx wins.
		if err := ctx.Err(); err != nil {
			for j := i; j < n; j++ {
				errs[j] = err
			}
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = fn(ctx, i)
		})
	}
	wg.Wait()
	return errs
}
