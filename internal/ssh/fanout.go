package ssh

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// FanOut runs fn for i in 0..n-1, at most limit at once (all at once when
// limit <= 0), waits for all of them and returns their errors by index. Once
// ctx has ended no new fn starts; those not started get ctx's error. One
// failure does not cancel the others: every node's outcome is reported.
func FanOut(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	var g errgroup.Group
	if limit > 0 {
		g.SetLimit(limit)
	}
	for i := range n {
		if err := ctx.Err(); err != nil {
			for j := i; j < n; j++ {
				errs[j] = err
			}
			break
		}
		run := func() error {
			errs[i] = fn(ctx, i)
			return nil
		}
		if !g.TryGo(run) {
			// Every slot is taken: ctx may end while this one waits.
			g.Go(func() error {
				if err := ctx.Err(); err != nil {
					errs[i] = err
					return nil
				}
				return run()
			})
		}
	}
	_ = g.Wait() // every error is in errs
	return errs
}
