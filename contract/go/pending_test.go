package contract

// Operations being implemented while this suite was written. Each test skips
// only when the server answers code 12 (UNIMPLEMENTED), so it starts running
// by itself once the operation lands.

import (
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

func TestListBucketAncestry(t *testing.T) {
	s := h(t)
	parentBucket, childBucket := uniq("anc-parent"), uniq("anc-child")
	s.createBucket(t, parentBucket, "", nil)
	s.createBucket(t, childBucket, "", nil)

	// Parent v1 on channel "release", consumed by the child's build like
	// Packer does with an hcp-packer-artifact data source.
	parent := s.completeVersion(t, parentBucket, "parent-fp", "file.base")
	release, err := s.createChannel(t, parentBucket, "release", "parent-fp", false)
	must(t, err, "CreateChannel release")

	_, err = s.createVersion(t, childBucket, "child-fp")
	must(t, err, "CreateVersion child")
	run := newUUID()
	cb, err := s.createBuild(t, childBucket, "child-fp", "file.app", run)
	must(t, err, "CreateBuild child")
	_, err = s.updateBuild(t, childBucket, "child-fp", cb.ID, &UpdateBuildBody{
		Artifacts:                []*ArtifactBody{{ExternalIdentifier: "app.img", Region: "."}},
		Metadata:                 packerMetadata(),
		PackerRunUUID:            run,
		Platform:                 "packer.file",
		SourceExternalIdentifier: "parent.img",
		ParentVersionID:          parent.ID,
		ParentChannelID:          release.ID,
		Status:                   statusPtr(buildDone),
	})
	must(t, err, "UpdateBuild DONE with parent ids")

	list := func(bucket, kind string) *pm.HashicorpCloudPacker20230101ListBucketAncestryResponse {
		t.Helper()
		p := packer.NewPackerServiceListBucketAncestryParamsWithContext(ctx(t))
		p.LocationOrganizationID, p.LocationProjectID, p.BucketName = s.orgID, s.project, bucket
		p.Type = strPtr(kind)
		resp, err := s.packer.PackerServiceListBucketAncestry(p, nil)
		skipIfUnimplemented(t, err, "ListBucketAncestry")
		must(t, err, "ListBucketAncestry "+bucket+" "+kind)
		return resp.Payload
	}

	children := list(parentBucket, "ANCESTRY_TYPE_CHILDREN")
	if children.TotalCount != 1 || len(children.Relations) != 1 {
		t.Fatalf("children of %s: total_count %d, %s", parentBucket, children.TotalCount, jsonOf(children))
	}
	rel := children.Relations[0]
	if rel.Child == nil || rel.Child.BucketName != childBucket || rel.Child.VersionFingerprint != "child-fp" {
		t.Errorf("child side = %s", jsonOf(rel.Child))
	}
	if rel.Status == nil || *rel.Status != pm.HashicorpCloudPacker20230101AncestryStatusUPTODATE {
		t.Errorf("edge status = %v, want UP_TO_DATE (release still serves the parent)", rel.Status)
	}

	parents := list(childBucket, "ANCESTRY_TYPE_PARENTS")
	if parents.TotalCount != 1 || len(parents.Relations) != 1 {
		t.Fatalf("parents of %s: total_count %d, %s", childBucket, parents.TotalCount, jsonOf(parents))
	}
	pr := parents.Relations[0].Parent
	if pr == nil || pr.BucketName != parentBucket || pr.VersionID != parent.ID ||
		pr.VersionFingerprint != "parent-fp" || pr.VersionName != "v1" || pr.ChannelName != "release" {
		t.Errorf("parent side = %s", jsonOf(pr))
	}
	if pr != nil && (pr.ChannelVersion == nil || pr.ChannelVersion.ID != parent.ID) {
		t.Errorf("parent.channel_version = %s, want the parent version", jsonOf(pr.ChannelVersion))
	}

	// Moving the channel makes the edge OUT_OF_DATE.
	s.completeVersion(t, parentBucket, "parent-fp-2", "file.base")
	_, err = s.updateChannel(t, parentBucket, "release", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "parent-fp-2",
	})
	must(t, err, "UpdateChannel release -> parent-fp-2")
	parents = list(childBucket, "ANCESTRY_TYPE_PARENTS")
	if len(parents.Relations) != 1 || parents.Relations[0].Status == nil ||
		*parents.Relations[0].Status != pm.HashicorpCloudPacker20230101AncestryStatusOUTOFDATE {
		t.Errorf("after moving release: %s, want OUT_OF_DATE", jsonOf(parents))
	}

	// Both directions by default; a missing bucket is code 5.
	both := list(parentBucket, "ANCESTRY_TYPE_UNSET")
	if len(both.Relations) != 1 {
		t.Errorf("default type lists %d relations of %s, want 1", len(both.Relations), parentBucket)
	}
	p := packer.NewPackerServiceListBucketAncestryParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID, p.BucketName = s.orgID, s.project, parentBucket+"-missing"
	_, err = s.packer.PackerServiceListBucketAncestry(p, nil)
	requireCode(t, err, 5, "ListBucketAncestry of a missing bucket")
}

func TestSearchExternalArtifact(t *testing.T) {
	s := h(t)
	bucket := uniq("search")
	s.createBucket(t, bucket, "", map[string]string{"team": "search"})
	v := s.completeVersion(t, bucket, "search-fp", "amazon-ebs.ubuntu")
	art := artifactFor(bucket, "search-fp", "amazon-ebs.ubuntu")

	search := func(body *pm.HashicorpCloudPacker20230101SearchExternalArtifactRequestBody) (*pm.HashicorpCloudPacker20230101SearchExternalArtifactResponse, error) {
		t.Helper()
		p := packer.NewPackerServiceSearchExternalArtifactParamsWithContext(ctx(t))
		p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
		p.Body = body
		resp, err := s.packer.PackerServiceSearchExternalArtifact(p, nil)
		if err != nil {
			return nil, err
		}
		return resp.Payload, nil
	}

	found, err := search(&pm.HashicorpCloudPacker20230101SearchExternalArtifactRequestBody{ExternalIdentifier: art.ExternalIdentifier})
	skipIfUnimplemented(t, err, "SearchExternalArtifact")
	must(t, err, "SearchExternalArtifact")
	if len(found.Artifacts) != 1 {
		t.Fatalf("search found %d results, want 1: %s", len(found.Artifacts), jsonOf(found))
	}
	hit := found.Artifacts[0]
	if hit.Bucket == nil || hit.Bucket.Name != bucket || hit.Bucket.ID == "" || hit.Bucket.Labels["team"] != "search" {
		t.Errorf("result bucket = %s", jsonOf(hit.Bucket))
	}
	if hit.Version == nil || hit.Version.ID != v.ID || hit.Version.Fingerprint != "search-fp" || hit.Version.Name != "v1" ||
		hit.Version.Status == nil || *hit.Version.Status != versionActive {
		t.Errorf("result version = %s", jsonOf(hit.Version))
	}
	if hit.Build == nil || hit.Build.ComponentType != "amazon-ebs.ubuntu" || hit.Build.Platform != "aws" || hit.Build.Status == nil {
		t.Errorf("result build = %s", jsonOf(hit.Build))
	}
	if pg := found.Pagination; pg != nil && pg.NextPageToken != "" {
		t.Errorf("single result but next_page_token %q", pg.NextPageToken)
	}

	// Exact filters.
	found, err = search(&pm.HashicorpCloudPacker20230101SearchExternalArtifactRequestBody{
		ExternalIdentifier: art.ExternalIdentifier, Platform: "aws", Region: art.Region,
	})
	must(t, err, "SearchExternalArtifact with platform and region")
	if len(found.Artifacts) != 1 {
		t.Errorf("matching platform and region: %d results", len(found.Artifacts))
	}
	found, err = search(&pm.HashicorpCloudPacker20230101SearchExternalArtifactRequestBody{
		ExternalIdentifier: art.ExternalIdentifier, Region: "ap-south-1",
	})
	must(t, err, "SearchExternalArtifact with another region")
	if len(found.Artifacts) != 0 {
		t.Errorf("another region still matched: %s", jsonOf(found))
	}
	found, err = search(&pm.HashicorpCloudPacker20230101SearchExternalArtifactRequestBody{
		ExternalIdentifier: strings.TrimSuffix(art.ExternalIdentifier, "ubuntu"),
	})
	must(t, err, "SearchExternalArtifact with a prefix")
	if len(found.Artifacts) != 0 {
		t.Errorf("a prefix matched (matches must be exact): %s", jsonOf(found))
	}

	// external_identifier is required.
	_, err = search(&pm.HashicorpCloudPacker20230101SearchExternalArtifactRequestBody{Platform: "aws"})
	requireCode(t, err, 3, "SearchExternalArtifact without external_identifier")
}

func TestRevokeAndRestoreVersion(t *testing.T) {
	s := h(t)
	bucket := uniq("revoke")
	s.createBucket(t, bucket, "", nil)
	v1 := s.completeVersion(t, bucket, "rev-one")
	v2 := s.completeVersion(t, bucket, "rev-two")
	_, err := s.createChannel(t, bucket, "prod", "rev-one", false)
	must(t, err, "CreateChannel prod")
	_, err = s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "rev-two",
	})
	must(t, err, "UpdateChannel prod -> rev-two")

	// Restore of a version that is not revoked: 9 (or 12 while unimplemented).
	_, err = s.updateVersion(t, bucket, "rev-one", &pm.HashicorpCloudPacker20230101UpdateVersionBody{Restore: true})
	skipIfUnimplemented(t, err, "UpdateVersion revoke/restore")
	requireCode(t, err, 9, "restore of a version that is not revoked")

	// Immediate revocation of v2 (revoke_at = now), as the UI sends it.
	revoked, err := s.updateVersion(t, bucket, "rev-two", &pm.HashicorpCloudPacker20230101UpdateVersionBody{
		RevokeAt:          strfmt.DateTime(time.Now()),
		RevocationMessage: "CVE-2026-0001",
	})
	must(t, err, "UpdateVersion revoke now")
	if revoked.Status == nil || *revoked.Status != versionRevoked {
		t.Errorf("status after revoke = %v, want VERSION_REVOKED", revoked.Status)
	}
	if revoked.RevocationMessage != "CVE-2026-0001" || revoked.RevocationAuthor == "" {
		t.Errorf("revocation message/author = %q/%q", revoked.RevocationMessage, revoked.RevocationAuthor)
	}
	if revoked.RevocationType == nil || *revoked.RevocationType != pm.HashicorpCloudPacker20230101RevocationTypeMANUAL {
		t.Errorf("revocation_type = %v, want MANUAL", revoked.RevocationType)
	}
	requireRecent(t, "revoke_at", revoked.RevokeAt)

	// Channels serving v2 roll back to v1, latest included.
	for _, name := range []string{"prod", "latest"} {
		c, err := s.getChannel(t, bucket, name)
		must(t, err, "GetChannel "+name+" after revoke")
		if c.Version == nil || c.Version.ID != v1.ID {
			t.Errorf("%s after revoking v2 serves %s, want rolled back to v1", name, jsonOf(c.Version))
		}
	}
	// A revoked version cannot be assigned.
	_, err = s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "rev-two",
	})
	requireCode(t, err, 9, "UpdateChannel to a revoked version")

	// Restore v2.
	restored, err := s.updateVersion(t, bucket, "rev-two", &pm.HashicorpCloudPacker20230101UpdateVersionBody{Restore: true})
	must(t, err, "UpdateVersion restore")
	if restored.Status == nil || *restored.Status != versionActive {
		t.Errorf("status after restore = %v, want VERSION_ACTIVE", restored.Status)
	}
	if !time.Time(restored.RevokeAt).IsZero() {
		t.Errorf("revoke_at after restore = %s, want unset", restored.RevokeAt)
	}
	if restored.ID != v2.ID {
		t.Errorf("restore answered version %s, want %s", restored.ID, v2.ID)
	}

	// Scheduled revocation: still usable until then.
	sched, err := s.updateVersion(t, bucket, "rev-one", &pm.HashicorpCloudPacker20230101UpdateVersionBody{
		RevokeIn: "30d", RevocationMessage: "end of life",
	})
	must(t, err, "UpdateVersion revoke_in 30d")
	if sched.Status == nil || *sched.Status != versionScheduled {
		t.Errorf("status after revoke_in 30d = %v, want VERSION_REVOCATION_SCHEDULED", sched.Status)
	}
	if d := time.Until(time.Time(sched.RevokeAt)); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("revoke_at %s is not 30 days ahead", sched.RevokeAt)
	}
	again, err := s.getVersion(t, bucket, "rev-one")
	must(t, err, "GetVersion after scheduling")
	if again.Status == nil || *again.Status != versionScheduled || again.RevocationMessage != "end of life" {
		t.Errorf("GetVersion after scheduling: status %v message %q", again.Status, again.RevocationMessage)
	}

	// Missing fingerprint: code 10, like GetVersion.
	_, err = s.updateVersion(t, bucket, "rev-missing", &pm.HashicorpCloudPacker20230101UpdateVersionBody{RevokeIn: "1h"})
	requireCode(t, err, 10, "UpdateVersion revoke of a missing fingerprint")
}
