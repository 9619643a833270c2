package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/e2e-tool/e2e/sdk"
)

// NodeLogs writes an instance's console output (EC2's GetConsoleOutput:
// the serial console as of its last capture, boot messages and cloud-init
// included) as console.log, for an instance in any state. EC2 keeps the
// last 64 KiB.
func (b backend) NodeLogs(ctx context.Context, ref sdk.ClusterRef, node string, files sdk.LogFiles) error {
	cl, err := b.Get(ctx, ref)
	if err != nil {
		return err
	}
	var id string
	for _, n := range cl.Nodes {
		if node == n.Name || node == string(n.Role)+"_"+strconv.Itoa(n.Index) {
			id = n.Name
		}
	}
	if id == "" {
		return fmt.Errorf("%w: cluster %q has no instance %q", sdk.ErrNotFound, ref.ClusterID, node)
	}
	c, err := b.connectRef(ctx, ref)
	if err != nil {
		return err
	}
	out, err := c.api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		return apiError("getting the console output of "+id, err)
	}
	text, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return fmt.Errorf("the console output of %s is not base64: %w", id, err)
	}
	w, err := files.File("console.log")
	if err != nil {
		return err
	}
	_, err = w.Write(text)
	return err
}
