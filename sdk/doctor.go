package sdk

import (
	"context"

	"github.com/e2e-tool/e2e/sdk/internal/backendv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Check is the result of one check a Doctor made.
type Check struct {
	// Name says what was checked, in a few words ("Docker engine
	// reachable").
	Name string `json:"name"`
	// OK is true when the check passed.
	OK bool `json:"ok"`
	// Detail is what was found: a version, a path, a free size, or the
	// error. Never a secret: say "found in $AWS_ACCESS_KEY_ID", not the key.
	Detail string `json:"detail,omitempty"`
	// Fix says what to do when the check failed, as a command or a
	// sentence; empty when OK.
	Fix string `json:"fix,omitempty"`
}

// Doctor is implemented by backends that can check what they need on this
// machine and in their world (an engine reachable, an image present or
// buildable, credentials found) before anything is made. `e2e doctor`
// shows the checks beside the core's own, with the fix of each failure.
type Doctor interface {
	// Doctor runs every check and returns them all, passed or not; it
	// makes nothing and never puts a secret in a Check. opts are parsed
	// against the schema, so an option that changes what is needed (an
	// image, a region) is checked as Create would use it.
	Doctor(ctx context.Context, opts Options) []Check
}

func (s *server) Doctor(ctx context.Context, req *backendv1.DoctorRequest) (*backendv1.DoctorResponse, error) {
	ctx, done := s.begin(ctx)
	defer done()
	d, ok := s.backend.(Doctor)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "the %s backend has no checks", s.info.Name)
	}
	opts, err := s.parse(req.GetOptionsJson())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &backendv1.DoctorResponse{}
	for _, c := range d.Doctor(ctx, opts) {
		resp.Checks = append(resp.Checks, &backendv1.DoctorCheck{Name: c.Name, Ok: c.OK, Detail: c.Detail, Fix: c.Fix})
	}
	return resp, nil
}
