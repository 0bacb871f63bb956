package contract

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

func TestBucketLifecycle(t *testing.T) {
	s := h(t)
	name := uniq("bucket")
	labels := map[string]string{"team": "platform", "os": "ubuntu"}

	created := s.createBucket(t, name, "Base image", labels)
	if created.ID == "" || created.Name != name {
		t.Fatalf("CreateBucket = %s", jsonOf(created))
	}

	// Duplicate name.
	p := packer.NewPackerServiceCreateBucketParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	p.Body = &pm.HashicorpCloudPacker20230101CreateBucketBody{Name: name}
	_, err := s.packer.PackerServiceCreateBucket(p, nil)
	requireCode(t, err, 6, "CreateBucket with an existing name")

	// GetBucket: every field the Terraform provider and Packer read.
	b, err := s.getBucket(t, name)
	must(t, err, "GetBucket")
	if b.ID != created.ID || b.Name != name || b.Description != "Base image" {
		t.Errorf("GetBucket = %s", jsonOf(b))
	}
	// Packer compares labels with reflect.DeepEqual to decide whether to PATCH.
	if !reflect.DeepEqual(b.Labels, labels) {
		t.Errorf("labels = %v, want %v", b.Labels, labels)
	}
	if b.Platforms == nil || len(b.Platforms) != 0 {
		t.Errorf("platforms = %#v, want []", b.Platforms)
	}
	if b.VersionCount != "0" {
		t.Errorf("version_count = %q, want the int64 string \"0\"", b.VersionCount)
	}
	if want := "packer/project/" + s.project + "/bucket/" + name; b.ResourceName != want {
		t.Errorf("resource_name = %q, want %q", b.ResourceName, want)
	}
	if b.Location == nil || b.Location.OrganizationID != s.orgID || b.Location.ProjectID != s.project {
		t.Errorf("location = %s", jsonOf(b.Location))
	}
	if b.LatestVersion != nil {
		t.Errorf("latest_version = %s, want null on a new bucket", jsonOf(b.LatestVersion))
	}
	requireRecent(t, "bucket.created_at", b.CreatedAt)
	requireRecent(t, "bucket.updated_at", b.UpdatedAt)

	// UpdateBucket the way Packer does it: platforms null, description and labels replaced.
	up := packer.NewPackerServiceUpdateBucketParamsWithContext(ctx(t))
	up.LocationOrganizationID, up.LocationProjectID, up.BucketName = s.orgID, s.project, name
	up.Body = &pm.HashicorpCloudPacker20230101UpdateBucketBody{
		Description: "Golden image", Labels: map[string]string{"team": "security"}, Platforms: nil,
	}
	ur, err := s.packer.PackerServiceUpdateBucket(up, nil)
	must(t, err, "UpdateBucket")
	if ur.Payload.Bucket == nil || ur.Payload.Bucket.Description != "Golden image" {
		t.Errorf("UpdateBucket response = %s", jsonOf(ur.Payload))
	}
	b, err = s.getBucket(t, name)
	must(t, err, "GetBucket after UpdateBucket")
	if b.Description != "Golden image" || !reflect.DeepEqual(b.Labels, map[string]string{"team": "security"}) {
		t.Errorf("after UpdateBucket: description %q labels %v", b.Description, b.Labels)
	}

	// UpdateBucket of a missing bucket.
	up = packer.NewPackerServiceUpdateBucketParamsWithContext(ctx(t))
	up.LocationOrganizationID, up.LocationProjectID, up.BucketName = s.orgID, s.project, name+"-missing"
	up.Body = &pm.HashicorpCloudPacker20230101UpdateBucketBody{Description: "x"}
	_, err = s.packer.PackerServiceUpdateBucket(up, nil)
	requireCode(t, err, 5, "UpdateBucket of a missing bucket")

	// DeleteBucket, then it is gone (the provider treats 404 as gone).
	dp := packer.NewPackerServiceDeleteBucketParamsWithContext(ctx(t))
	dp.LocationOrganizationID, dp.LocationProjectID, dp.BucketName = s.orgID, s.project, name
	_, err = s.packer.PackerServiceDeleteBucket(dp, nil)
	must(t, err, "DeleteBucket")
	_, err = s.getBucket(t, name)
	requireCode(t, err, 5, "GetBucket after DeleteBucket")
	_, err = s.packer.PackerServiceDeleteBucket(dp, nil)
	requireCode(t, err, 5, "DeleteBucket of a missing bucket")
}

// ListBuckets paginated exactly like terraform-provider-hcp: sorting.order_by=name,
// follow next_page_token until it is empty. The loop must end.
func TestListBucketsPagination(t *testing.T) {
	s := h(t)
	prefix := uniq("page")
	var mine []string
	for i := 0; i < 5; i++ {
		n := prefix + "-" + string(rune('e'-i)) // created out of order: e, d, c, b, a
		s.createBucket(t, n, "", nil)
		mine = append(mine, n)
	}
	sort.Strings(mine)

	var names []string
	var token *string
	pages := 0
	for {
		pages++
		if pages > 200 {
			t.Fatalf("ListBuckets pagination did not terminate after %d pages", pages)
		}
		p := packer.NewPackerServiceListBucketsParamsWithContext(ctx(t))
		p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
		p.SortingOrderBy = []string{"name"}
		p.PaginationPageSize = int64Ptr(2)
		p.PaginationNextPageToken = token
		resp, err := s.packer.PackerServiceListBuckets(p, nil)
		must(t, err, "ListBuckets")
		if len(resp.Payload.Buckets) > 2 {
			t.Fatalf("page of %d buckets, asked for 2", len(resp.Payload.Buckets))
		}
		for _, b := range resp.Payload.Buckets {
			if b.Name == "" || b.ID == "" || b.Platforms == nil {
				t.Errorf("listed bucket incomplete: %s", jsonOf(b))
			}
			names = append(names, b.Name)
		}
		if resp.Payload.Pagination == nil || resp.Payload.Pagination.NextPageToken == "" {
			break
		}
		next := resp.Payload.Pagination.NextPageToken
		token = &next
	}
	if pages < 3 {
		t.Errorf("only %d page(s) for at least 5 buckets at page size 2", pages)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("buckets not ordered by name: %v", names)
	}
	seen := map[string]bool{}
	var got []string
	for _, n := range names {
		if seen[n] {
			t.Errorf("bucket %s listed twice across pages", n)
		}
		seen[n] = true
		if strings.HasPrefix(n, prefix+"-") {
			got = append(got, n)
		}
	}
	if !reflect.DeepEqual(got, mine) {
		t.Errorf("listed %v, want %v", got, mine)
	}

	// Descending order is honoured too.
	p := packer.NewPackerServiceListBucketsParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	p.SortingOrderBy = []string{"name desc"}
	resp, err := s.packer.PackerServiceListBuckets(p, nil)
	must(t, err, "ListBuckets name desc")
	var desc []string
	for _, b := range resp.Payload.Buckets {
		desc = append(desc, b.Name)
	}
	if !sort.IsSorted(sort.Reverse(sort.StringSlice(desc))) {
		t.Errorf("name desc not honoured: %v", desc)
	}
}
