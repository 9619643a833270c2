package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/e2e-tool/e2e/sdk"
)

// Nodes run privileged where the engine allows it. Some engines refuse
// privileged containers when they start them ("unable to apply caps:
// operation not permitted": rootless engines, or engines in a sandbox
// without CAP_SYS_RESOURCE); nodes then get every capability but
// SYS_RESOURCE. Finding out costs a throw-away container start, so the
// answer is remembered per engine for a day, in the user's cache directory.
// A remembered "allowed" that has become wrong is caught when a node fails
// to start, and that node is made again with the fallback.

// privilegeTTL is how long a remembered answer is trusted.
const privilegeTTL = 24 * time.Hour

// privileges is the decision for one Create; safe for concurrent use.
type privileges struct {
	cachePath string // "" when there is no cache directory
	engine    string

	mu         sync.Mutex
	privileged bool
	reason     string // why the engine refuses, when it does
	warned     bool
}

// privilegeRecord is the cache file's content.
type privilegeRecord struct {
	Engine     string    `json:"engine"`
	Privileged bool      `json:"privileged"`
	Reason     string    `json:"reason,omitempty"`
	Checked    time.Time `json:"checked"`
}

// engineKey identifies an engine for the cache: where it is and what it runs.
func engineKey(ctx context.Context, cli *client.Client) (string, error) {
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return "", engineError(fmt.Errorf("asking Docker for its version: %w", err))
	}
	return strings.Join([]string{cli.DaemonHost(), v.Version, v.APIVersion, v.Os, v.Arch, v.KernelVersion}, " "), nil
}

func privilegeCachePath(engine string) string {
	dir, err := os.UserCacheDir()
	if err != nil || dir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(engine))
	return filepath.Join(dir, "e2e", "docker", "privileged-"+hex.EncodeToString(sum[:8])+".json")
}

// decidePrivileges returns how the nodes get their privileges: what was
// remembered for this engine, or what a probe container finds. remove
// removes the probe container, if one was made; call it when convenient.
func decidePrivileges(ctx context.Context, cli *client.Client, p *plan) (pv *privileges, remove func(), err error) {
	remove = func() {}
	engine, err := engineKey(ctx, cli)
	if err != nil {
		return nil, remove, err
	}
	pv = &privileges{engine: engine, cachePath: privilegeCachePath(engine), privileged: true}
	if rec, ok := pv.load(); ok {
		pv.privileged, pv.reason = rec.Privileged, rec.Reason
		sdk.Logger(ctx).Debug("privileged containers: remembered", "privileged", rec.Privileged, "checked", rec.Checked, "cache", pv.cachePath)
		return pv, remove, nil
	}
	ok, reason, remove, err := probePrivileged(ctx, cli, p)
	if err != nil {
		return nil, remove, err
	}
	pv.privileged, pv.reason = ok, reason
	pv.store()
	return pv, remove, nil
}

func (pv *privileges) load() (privilegeRecord, bool) {
	var rec privilegeRecord
	if pv.cachePath == "" {
		return rec, false
	}
	b, err := os.ReadFile(pv.cachePath)
	if err != nil || json.Unmarshal(b, &rec) != nil {
		return rec, false
	}
	if rec.Engine != pv.engine || time.Since(rec.Checked) > privilegeTTL || time.Until(rec.Checked) > time.Minute {
		return rec, false
	}
	return rec, true
}

// store remembers the decision; a cache that cannot be written only
// costs a probe next time.
func (pv *privileges) store() {
	if pv.cachePath == "" {
		return
	}
	b, err := json.Marshal(privilegeRecord{Engine: pv.engine, Privileged: pv.privileged, Reason: pv.reason, Checked: time.Now().UTC()})
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(pv.cachePath), 0o755); err != nil {
		return
	}
	tmp := fmt.Sprintf("%s.%d.tmp", pv.cachePath, os.Getpid())
	if os.WriteFile(tmp, b, 0o644) == nil {
		if os.Rename(tmp, pv.cachePath) != nil {
			_ = os.Remove(tmp)
		}
	}
}

// get returns whether nodes are made privileged now.
func (pv *privileges) get() bool {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	return pv.privileged
}

// refused records that the engine refused a privileged node after all.
func (pv *privileges) refused(reason string) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.privileged {
		pv.privileged, pv.reason = false, reason
		pv.store()
	}
}

// warnOnce tells the user, once, that the nodes are not privileged.
func (pv *privileges) warnOnce(r sdk.Reporter) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.privileged || pv.warned {
		return
	}
	pv.warned = true
	r.Warnf("this Docker engine refuses privileged containers (%s): the nodes get every capability but SYS_RESOURCE instead", pv.reason)
}

// probePrivileged starts a throw-away privileged container to learn
// whether the engine allows privileged containers; refused then holds the
// engine's reason. The caller calls remove, which removes the container,
// when it likes (it is labelled like the cluster meanwhile).
func probePrivileged(ctx context.Context, cli *client.Client, p *plan) (ok bool, refused string, remove func(), err error) {
	labels := p.commonLabels()
	labels[labelRole] = roleProbe
	name := "e2e-" + p.id + "-probe-" + p.uid
	dctx, cancel := detached(ctx)
	defer cancel()
	resp, err := cli.ContainerCreate(dctx, &container.Config{
		Image: p.image, Entrypoint: []string{"true"}, Cmd: nil, Labels: labels,
	}, &container.HostConfig{Privileged: true, NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		return false, "", func() {}, engineError(fmt.Errorf("checking whether Docker allows privileged containers: %w", err))
	}
	remove = func() {
		rctx, cancel := sdk.CleanupContext(ctx)
		defer cancel()
		_ = cli.ContainerRemove(rctx, resp.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	serr := cli.ContainerStart(ctx, resp.ID, container.StartOptions{})
	switch {
	case serr == nil:
		return true, "", remove, nil
	case ctx.Err() != nil:
		return false, "", remove, ctx.Err()
	case capsRefused(serr):
		return false, refusalReason(serr), remove, nil
	}
	// Any other failure (an image without `true`, say) came after the
	// capabilities were applied.
	return true, "", remove, nil
}

// capsRefused tells a start refused for lack of privileges.
func capsRefused(err error) bool {
	s := err.Error()
	return strings.Contains(s, "apply caps") || strings.Contains(s, "operation not permitted")
}

// refusalReason is the short form of the engine's refusal.
func refusalReason(err error) string {
	s := err.Error()
	if strings.Contains(s, "unable to apply caps") {
		return "unable to apply caps: operation not permitted"
	}
	if i := strings.Index(s, "operation not permitted"); i >= 0 {
		start := strings.LastIndex(s[:i], ": ")
		if start < 0 {
			start = 0
		} else {
			start += 2
		}
		return s[start : i+len("operation not permitted")]
	}
	return s
}
