package contract

import (
	"testing"

	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

// requireEmbeddedVersion checks what Packer's data sources read from a channel.
func requireEmbeddedVersion(t *testing.T, what string, c *Channel, want *Version) {
	t.Helper()
	if c.Version == nil {
		t.Fatalf("%s: channel.version is null, want %s", what, want.Fingerprint)
	}
	v := c.Version
	if v.ID != want.ID || v.Fingerprint != want.Fingerprint || v.Name != want.Name || v.BucketName != want.BucketName {
		t.Errorf("%s: embedded version %s, want %s", what, jsonOf(v), want.Fingerprint)
	}
	if v.Status == nil || *v.Status != versionActive {
		t.Errorf("%s: embedded version status %v, want VERSION_ACTIVE (Packer dereferences it)", what, v.Status)
	}
	if len(v.Builds) == 0 {
		t.Fatalf("%s: embedded version has no builds", what)
	}
	for _, b := range v.Builds {
		if b.ID == "" || b.VersionID != want.ID || b.Status == nil || b.ComponentType == "" || b.Platform == "" {
			t.Errorf("%s: embedded build incomplete: %s", what, jsonOf(b))
		}
		if len(b.Artifacts) == 0 {
			t.Errorf("%s: embedded build %s has no artifacts", what, b.ComponentType)
		}
		for _, a := range b.Artifacts {
			if a.ID == "" || a.ExternalIdentifier == "" || a.Region == "" {
				t.Errorf("%s: embedded artifact incomplete: %s", what, jsonOf(a))
			}
			requireRecent(t, what+": artifact.created_at", a.CreatedAt)
		}
	}
}

func TestChannels(t *testing.T) {
	s := h(t)
	bucket := uniq("chan")
	s.createBucket(t, bucket, "", nil)

	// Every bucket has the managed `latest` channel, empty at first.
	lc := packer.NewPackerServiceListChannelsParamsWithContext(ctx(t))
	lc.LocationOrganizationID, lc.LocationProjectID, lc.BucketName = s.orgID, s.project, bucket
	list, err := s.packer.PackerServiceListChannels(lc, nil)
	must(t, err, "ListChannels")
	if len(list.Payload.Channels) != 1 || list.Payload.Channels[0].Name != "latest" {
		t.Fatalf("ListChannels of a new bucket = %s, want only latest", jsonOf(list.Payload))
	}
	latest := list.Payload.Channels[0]
	if !latest.Managed || latest.Version != nil || latest.ID == "" || latest.BucketName != bucket {
		t.Errorf("latest = %s, want managed with no version", jsonOf(latest))
	}

	v1 := s.completeVersion(t, bucket, "fp-one", "file.a", "null.b")
	v2 := s.completeVersion(t, bucket, "fp-two", "file.a")
	_, err = s.createVersion(t, bucket, "fp-incomplete")
	must(t, err, "CreateVersion incomplete")

	// CreateChannel with an initial assignment.
	prod, err := s.createChannel(t, bucket, "prod", "fp-one", false)
	must(t, err, "CreateChannel prod")
	if prod.ID == "" || prod.Name != "prod" || prod.Managed || prod.Restricted || prod.AuthorID == "" {
		t.Errorf("CreateChannel = %s", jsonOf(prod))
	}
	requireEmbeddedVersion(t, "CreateChannel prod", prod, v1)
	requireRecent(t, "channel.created_at", prod.CreatedAt)

	_, err = s.createChannel(t, bucket, "prod", "", false)
	requireCode(t, err, 6, "CreateChannel with an existing name")
	// The Terraform provider adopts `latest` on exactly this answer.
	_, err = s.createChannel(t, bucket, "latest", "", false)
	requireCode(t, err, 6, "CreateChannel latest")
	_, err = s.createChannel(t, bucket, "early", "fp-incomplete", false)
	requireCode(t, err, 9, "CreateChannel with an incomplete version")
	_, err = s.createChannel(t, bucket+"-missing", "prod", "", false)
	requireCode(t, err, 5, "CreateChannel in a missing bucket")

	staging, err := s.createChannel(t, bucket, "staging", "", false)
	must(t, err, "CreateChannel staging")
	if staging.Version != nil {
		t.Errorf("empty channel has version %s", jsonOf(staging.Version))
	}

	// GetChannel embeds the full version with builds, artifacts and version_id.
	got, err := s.getChannel(t, bucket, "prod")
	must(t, err, "GetChannel prod")
	if got.ID != prod.ID {
		t.Errorf("GetChannel id %s, want %s", got.ID, prod.ID)
	}
	requireEmbeddedVersion(t, "GetChannel prod", got, v1)
	if len(got.Version.Builds) != 2 {
		t.Errorf("GetChannel embeds %d builds, want 2", len(got.Version.Builds))
	}
	_, err = s.getChannel(t, bucket, "nope")
	requireCode(t, err, 5, "GetChannel of a missing channel")

	// latest follows the newest complete version.
	lt, err := s.getChannel(t, bucket, "latest")
	must(t, err, "GetChannel latest")
	requireEmbeddedVersion(t, "GetChannel latest", lt, v2)

	// ListChannels embeds versions too.
	list, err = s.packer.PackerServiceListChannels(lc, nil)
	must(t, err, "ListChannels")
	byName := map[string]*Channel{}
	for _, c := range list.Payload.Channels {
		byName[c.Name] = c
	}
	if len(byName) != 3 || byName["prod"] == nil || byName["staging"] == nil || byName["latest"] == nil {
		t.Fatalf("ListChannels = %s", jsonOf(list.Payload))
	}
	requireEmbeddedVersion(t, "ListChannels prod", byName["prod"], v1)

	// UpdateChannel, mask versionFingerprint (Packer and channel_assignment).
	up, err := s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "fp-two",
	})
	must(t, err, "UpdateChannel prod -> fp-two")
	requireEmbeddedVersion(t, "UpdateChannel prod", up, v2)

	_, err = s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{VersionFingerprint: "fp-one"})
	requireCode(t, err, 3, "UpdateChannel without update_mask")
	_, err = s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "fp-incomplete",
	})
	requireCode(t, err, 9, "UpdateChannel to an incomplete version")
	_, err = s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "fp-unknown",
	})
	requireCode(t, err, 5, "UpdateChannel to an unknown fingerprint")
	_, err = s.updateChannel(t, bucket, "nope", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "fp-one",
	})
	requireCode(t, err, 5, "UpdateChannel of a missing channel (no auto-create)")

	// Mask restricted: true, then false (which Go omits from the body).
	rc, err := s.updateChannel(t, bucket, "staging", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "restricted", Restricted: true,
	})
	must(t, err, "UpdateChannel restricted=true")
	if !rc.Restricted {
		t.Errorf("restricted not set: %s", jsonOf(rc))
	}
	rc, err = s.updateChannel(t, bucket, "staging", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "restricted",
	})
	must(t, err, "UpdateChannel restricted=false (omitted)")
	if rc.Restricted {
		t.Errorf("restricted still set after mask restricted with false: %s", jsonOf(rc))
	}

	// AssignChannelVersion: copy latest (fp-two) to staging.
	ap := packer.NewPackerServiceAssignChannelVersionParamsWithContext(ctx(t))
	ap.LocationOrganizationID, ap.LocationProjectID, ap.BucketName = s.orgID, s.project, bucket
	ap.Body = &pm.HashicorpCloudPacker20230101AssignChannelVersionBody{SourceChannel: "latest", TargetChannel: "staging"}
	ar, err := s.packer.PackerServiceAssignChannelVersion(ap, nil)
	must(t, err, "AssignChannelVersion latest -> staging")
	if ar.Payload.Fingerprint != "fp-two" || ar.Payload.Version == nil || ar.Payload.Version.ID != v2.ID {
		t.Errorf("AssignChannelVersion = %s", jsonOf(ar.Payload))
	}
	if ar.Payload.SourceChannel == nil || ar.Payload.SourceChannel.Name != "latest" {
		t.Errorf("AssignChannelVersion source_channel = %s", jsonOf(ar.Payload.SourceChannel))
	}
	if ar.Payload.TargetChannel == nil || ar.Payload.TargetChannel.Name != "staging" {
		t.Fatalf("AssignChannelVersion target_channel = %s", jsonOf(ar.Payload.TargetChannel))
	}
	requireEmbeddedVersion(t, "AssignChannelVersion target", ar.Payload.TargetChannel, v2)

	// Unassign: mask versionFingerprint with no fingerprint.
	un, err := s.updateChannel(t, bucket, "prod", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint",
	})
	must(t, err, "UpdateChannel unassign")
	if un.Version != nil {
		t.Errorf("unassigned channel still has version %s", jsonOf(un.Version))
	}

	// History of prod: fp-one, fp-two, unassigned — newest first; count is int32.
	hp := packer.NewPackerServiceListChannelAssignmentHistoryParamsWithContext(ctx(t))
	hp.LocationOrganizationID, hp.LocationProjectID = s.orgID, s.project
	hp.BucketName, hp.ChannelName = bucket, "prod"
	hist, err := s.packer.PackerServiceListChannelAssignmentHistory(hp, nil)
	must(t, err, "ListChannelAssignmentHistory")
	rows := hist.Payload.History
	if hist.Payload.Count != int32(len(rows)) || len(rows) != 3 {
		t.Fatalf("history count %d with %d rows, want 3: %s", hist.Payload.Count, len(rows), jsonOf(hist.Payload))
	}
	if rows[0].Version != nil {
		t.Errorf("newest history row should be the unassignment: %s", jsonOf(rows[0]))
	}
	if rows[1].Version == nil || rows[1].Version.Fingerprint != "fp-two" ||
		rows[2].Version == nil || rows[2].Version.Fingerprint != "fp-one" {
		t.Errorf("history not newest first: %s", jsonOf(rows))
	}
	for _, r := range rows {
		requireRecent(t, "history.assigned_at", r.AssignedAt)
		if r.AuthorID == "" {
			t.Errorf("history row without author: %s", jsonOf(r))
		}
	}
	// Paged: count stays the total, the loop ends.
	hp.PaginationPageSize = int64Ptr(1)
	seen := 0
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("history pagination does not terminate")
		}
		hr, err := s.packer.PackerServiceListChannelAssignmentHistory(hp, nil)
		must(t, err, "ListChannelAssignmentHistory page")
		if hr.Payload.Count != 3 || len(hr.Payload.History) > 1 {
			t.Fatalf("history page: count %d, %d rows", hr.Payload.Count, len(hr.Payload.History))
		}
		seen += len(hr.Payload.History)
		if hr.Payload.Pagination == nil || hr.Payload.Pagination.NextPageToken == "" {
			break
		}
		next := hr.Payload.Pagination.NextPageToken
		hp.PaginationNextPageToken = &next
	}
	if seen != 3 {
		t.Errorf("paged history returned %d rows, want 3", seen)
	}
	hp = packer.NewPackerServiceListChannelAssignmentHistoryParamsWithContext(ctx(t))
	hp.LocationOrganizationID, hp.LocationProjectID = s.orgID, s.project
	hp.BucketName, hp.ChannelName = bucket, "nope"
	_, err = s.packer.PackerServiceListChannelAssignmentHistory(hp, nil)
	requireCode(t, err, 5, "ListChannelAssignmentHistory of a missing channel")

	// The managed `latest` channel refuses change: 9 / 9 / 3 (and 6 above).
	_, err = s.updateChannel(t, bucket, "latest", &pm.HashicorpCloudPacker20230101UpdateChannelBody{
		UpdateMask: "versionFingerprint", VersionFingerprint: "fp-one",
	})
	requireCode(t, err, 9, "UpdateChannel latest")
	ap.Body = &pm.HashicorpCloudPacker20230101AssignChannelVersionBody{SourceChannel: "staging", TargetChannel: "latest"}
	_, err = s.packer.PackerServiceAssignChannelVersion(ap, nil)
	requireCode(t, err, 9, "AssignChannelVersion to latest")
	dc := packer.NewPackerServiceDeleteChannelParamsWithContext(ctx(t))
	dc.LocationOrganizationID, dc.LocationProjectID = s.orgID, s.project
	dc.BucketName, dc.ChannelName = bucket, "latest"
	_, err = s.packer.PackerServiceDeleteChannel(dc, nil)
	requireCode(t, err, 3, "DeleteChannel latest")

	// DeleteVersion of a version a user channel serves: refused unless rolled back.
	dv := packer.NewPackerServiceDeleteVersionParamsWithContext(ctx(t))
	dv.LocationOrganizationID, dv.LocationProjectID = s.orgID, s.project
	dv.BucketName, dv.Fingerprint = bucket, "fp-two"
	_, err = s.packer.PackerServiceDeleteVersion(dv, nil)
	requireCode(t, err, 9, "DeleteVersion of a version assigned to staging")
	dv.RollbackChannels = func(b bool) *bool { return &b }(true)
	_, err = s.packer.PackerServiceDeleteVersion(dv, nil)
	must(t, err, "DeleteVersion with rollback_channels")
	lt, err = s.getChannel(t, bucket, "latest")
	must(t, err, "GetChannel latest after DeleteVersion")
	requireEmbeddedVersion(t, "latest rolled back", lt, v1)

	// DeleteChannel.
	dc.ChannelName = "staging"
	_, err = s.packer.PackerServiceDeleteChannel(dc, nil)
	must(t, err, "DeleteChannel staging")
	_, err = s.getChannel(t, bucket, "staging")
	requireCode(t, err, 5, "GetChannel after DeleteChannel")
	_, err = s.packer.PackerServiceDeleteChannel(dc, nil)
	requireCode(t, err, 5, "DeleteChannel of a missing channel")
}
