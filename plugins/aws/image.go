package main

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// image is the image the nodes boot.
type image struct {
	ID, Name   string
	RootDevice string
}

// findImage returns the image named by the ami option, or else the newest
// available image whose name matches ami_name among those of ami_owner
// (Debian 12's official images by default), with one DescribeImages in
// the region: image ids differ per region, so none is written down here.
func findImage(ctx context.Context, api ec2API, s settings) (image, error) {
	in := &ec2.DescribeImagesInput{}
	if s.ami != "" {
		in.ImageIds = []string{s.ami}
	} else {
		in.Owners = []string{s.amiOwner}
		in.Filters = []types.Filter{
			{Name: aws.String("name"), Values: []string{s.amiName}},
			{Name: aws.String("state"), Values: []string{"available"}},
		}
	}
	out, err := api.DescribeImages(ctx, in)
	if err != nil {
		return image{}, apiError("finding the image", err)
	}
	imgs := out.Images
	if len(imgs) == 0 {
		if s.ami != "" {
			return image{}, invalidInput(optAMI, "image %s does not exist in region %s: give an image of this region with -o %s=ami-...", s.ami, s.region, optAMI)
		}
		return image{}, invalidInput(optAMIName, "no image named %q owned by %s in region %s: give one with -o %s=ami-... or change %s and %s", s.amiName, s.amiOwner, s.region, optAMI, optAMIName, optAMIOwner)
	}
	// CreationDate is ISO 8601 in UTC: newest sorts last.
	newest := slices.MaxFunc(imgs, func(a, b types.Image) int {
		return strings.Compare(aws.ToString(a.CreationDate), aws.ToString(b.CreationDate))
	})
	return image{ID: aws.ToString(newest.ImageId), Name: aws.ToString(newest.Name), RootDevice: aws.ToString(newest.RootDeviceName)}, nil
}

// imageUsers maps the names of widely used images to the user their
// cloud-init lets in with the key pair, as their publishers document it.
var imageUsers = []struct {
	re   *regexp.Regexp
	user string
}{
	{regexp.MustCompile(`(?i)debian`), "admin"},
	{regexp.MustCompile(`(?i)ubuntu`), "ubuntu"},
	{regexp.MustCompile(`(?i)^(amzn|al20|amazon)`), "ec2-user"},
	{regexp.MustCompile(`(?i)^rhel|red ?hat`), "ec2-user"},
	{regexp.MustCompile(`(?i)centos`), "centos"},
	{regexp.MustCompile(`(?i)rocky`), "rocky"},
	{regexp.MustCompile(`(?i)almalinux`), "ec2-user"},
	{regexp.MustCompile(`(?i)fedora`), "fedora"},
	{regexp.MustCompile(`(?i)suse|sles`), "ec2-user"},
}

// sshUser is the user the core logs in as: the user's --ssh-user, the
// ssh_user option, or the image's usual user.
func sshUser(requested string, s settings, img image) (string, error) {
	switch {
	case requested != "":
		return requested, nil
	case s.sshUser != "":
		return s.sshUser, nil
	}
	for _, u := range imageUsers {
		if u.re.MatchString(img.Name) {
			return u.user, nil
		}
	}
	return "", invalidInput(optSSHUser, "cannot tell the SSH user of image %s (%q): give it with -o %s=USER", img.ID, img.Name, optSSHUser)
}

// errNoRootDevice explains why root_volume_size cannot be applied.
func errNoRootDevice(img image) error {
	return invalidInput(optRootVolumeSize, "image %s names no root device, so its size cannot be set: leave %s out", img.ID, optRootVolumeSize)
}
