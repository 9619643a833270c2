package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/e2e-tool/e2e/sdk"
)

// apiErrorCode is the EC2 error code of err, "" when it is not an API
// error.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// apiError turns an EC2 error into one line that says what to do: the
// SDK's own text names the operation, HTTP status and request id around
// the message. What is the user's to fix (quota, capacity, credentials, a
// wrong image or instance type) says so. Cancellation stays as it is.
func apiError(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := oneLine(ae.ErrorMessage())
	switch code := ae.ErrorCode(); code {
	case "VcpuLimitExceeded", "InstanceLimitExceeded":
		return fmt.Errorf("%s: the account's EC2 quota is too low (%s: %s): use fewer or smaller instances, or ask AWS for more (Service Quotas, \"Running On-Demand Standard instances\")", what, code, msg)
	case "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientAddressCapacity":
		return fmt.Errorf("%s: EC2 has no capacity for this right now (%s: %s): try another instance type, another subnet (availability zone) with subnet_id, or later", what, code, msg)
	case "AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch", "OptInRequired", "ExpiredToken", "RequestExpired":
		if i := strings.Index(msg, " Encoded authorization failure message"); i > 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("%s: AWS refused the credentials (%s: %s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the profile, and the IAM permissions in docs/backends/aws.md", what, code, msg)
	case "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable":
		return invalidInput(optAMI, "%s: %s (%s): give an image of this region with -o %s=ami-...", what, msg, code, optAMI)
	case "InvalidInstanceType", "InvalidInstanceType.NotFound", "Unsupported":
		return invalidInput(optInstanceType, "%s: %s (%s): choose another instance type", what, msg, code)
	case "InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed":
		return invalidInput(optSubnetID, "%s: %s (%s): give a subnet of this region with -o %s=subnet-...", what, msg, code, optSubnetID)
	default:
		return fmt.Errorf("%s: %s: %s", what, code, msg)
	}
}

// invalidInput is an error in an option that only EC2 could judge: the
// core reports it as bad input (exit 2).
func invalidInput(option, format string, args ...any) error {
	return &sdk.DiagnosticsError{Diagnostics: []sdk.Diagnostic{sdk.Errorf(option, format, args...)}}
}

// credentialsError is the one line for credentials the SDK could not find
// or load.
func credentialsError(err error) error {
	return fmt.Errorf("no usable AWS credentials (%s): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for a profile of ~/.aws/config (aws sso login for SSO)", lastClause(err))
}

// lastClause keeps the innermost part of the SDK's chained message ("...:
// failed to refresh cached credentials, no EC2 IMDS role found, ...").
func lastClause(err error) string {
	msg := oneLine(err.Error())
	if i := strings.LastIndex(msg, "failed to refresh cached credentials, "); i >= 0 {
		msg = msg[i+len("failed to refresh cached credentials, "):]
	}
	const max = 200
	if len(msg) > max {
		msg = msg[:max] + "..."
	}
	return msg
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
