package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/e2e-tool/e2e/sdk"
)

// Doctor makes the backend an sdk.Doctor: it checks that AWS credentials
// and a region are found, as Create would look for them. It calls no AWS
// API and never shows a credential, only where it was found.
func (backend) Doctor(ctx context.Context, opts sdk.Options) []sdk.Check {
	s := settingsOf(opts)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	creds := sdk.Check{Name: "AWS credentials found"}
	if s.accessKeyID != "" {
		creds.OK, creds.Detail = true, "from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	} else if cfg, err := config.LoadDefaultConfig(ctx); err != nil {
		creds.Detail, creds.Fix = credentialsFix(err)
	} else if c, err := cfg.Credentials.Retrieve(ctx); err != nil {
		creds.Detail, creds.Fix = credentialsFix(err)
	} else {
		creds.OK, creds.Detail = true, "from the AWS credential chain ("+c.Source+")"
	}
	region := sdk.Check{Name: "AWS region"}
	switch {
	case s.region != "":
		region.OK, region.Detail = true, s.region
	case profileRegion(ctx) != "":
		region.OK, region.Detail = true, profileRegion(ctx)+" (from the AWS profile)"
	default:
		region.Detail = "none given"
		region.Fix = fmt.Sprintf("give -o %s=REGION, set AWS_REGION, or region = in ~/.aws/config", optRegion)
	}
	return []sdk.Check{creds, region}
}

// credentialsFix splits credentialsError's line into what was found and
// what to do.
func credentialsFix(err error) (detail, fix string) {
	return "none usable: " + lastClause(err),
		"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for a profile of ~/.aws/config (aws sso login for SSO)"
}
