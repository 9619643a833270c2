package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// ec2API is the part of EC2 the backend uses; *ec2.Client is one, and the
// unit tests put an in-memory fake in its place.
type ec2API interface {
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	ImportKeyPair(context.Context, *ec2.ImportKeyPairInput, ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error)
	DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	DeleteKeyPair(context.Context, *ec2.DeleteKeyPairInput, ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
}

// Retry policy. Every call is retried by the AWS SDK's standard retryer
// (exponential backoff with full jitter, capped at maxBackoff) on
// throttling (RequestLimitExceeded, ...), 5xx answers and broken
// connections, without the SDK's client-side retry quota, which a burst
// of throttling would exhaust. Calls that meet EC2's eventual consistency
// retry its NotFound and DependencyViolation codes too (see the call
// options below). Quota and capacity errors are never retried: the user
// must act.
const (
	maxAttempts = 8
	maxBackoff  = 20 * time.Second
	// dependencyAttempts covers the minutes a terminated instance's
	// network interface keeps its security group in use.
	dependencyAttempts = 20
)

// notRetried are errors retrying cannot fix (EC2 sends capacity errors
// as 500, which the SDK would otherwise retry).
var notRetried = map[string]bool{
	"InsufficientInstanceCapacity": true, "VcpuLimitExceeded": true, "InstanceLimitExceeded": true,
	"InsufficientAddressCapacity": true, "InsufficientCapacity": true,
}

func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.RateLimiter = ratelimit.None
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			var ae smithy.APIError
			if errors.As(err, &ae) && notRetried[ae.ErrorCode()] {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, o.Retryables...)
	})
}

// retryCodes makes one call also retry the given error codes (EC2's
// eventual consistency: a resource just made is not yet visible to the
// next call), with at most attempts attempts when attempts > 0.
func retryCodes(attempts int, codes ...string) func(*ec2.Options) {
	return func(o *ec2.Options) {
		r := retry.AddWithErrorCodes(o.Retryer, codes...)
		if attempts > 0 {
			r = retry.AddWithMaxAttempts(r, attempts)
		}
		o.Retryer = r
	}
}

// newEC2Client builds the EC2 client of a call. Credentials: the secret
// options (from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with
// AWS_SESSION_TOKEN) when given, else the standard AWS credential chain.
// The endpoint is EC2's for the region unless the environment names
// another the standard way (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL).
// Nothing here logs a credential: the SDK's client logging stays off.
func newEC2Client(ctx context.Context, s settings) (ec2API, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(s.region),
		config.WithRetryer(newRetryer),
	}
	if s.accessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(s.accessKeyID, s.secretAccessKey, os.Getenv("AWS_SESSION_TOKEN"))))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, credentialsError(err)
	}
	// Fail with one line now rather than inside the first call.
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, credentialsError(err)
	}
	return ec2.NewFromConfig(cfg), nil
}

// profileRegion is the region of the AWS profile (AWS_PROFILE, or the
// default one), "" when it names none. It reads files only.
func profileRegion(ctx context.Context) string {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return ""
	}
	return cfg.Region
}
