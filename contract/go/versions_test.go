package contract

import (
	"reflect"
	"testing"

	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

func TestVersionAndBuildLifecycle(t *testing.T) {
	s := h(t)
	bucket := uniq("vb")
	s.createBucket(t, bucket, "", nil)
	fp := "01J9ZQ7X3M5V6K8T2N4R0A1B2C"

	// A missing version is code 10 (Packer creates the version only on 10).
	_, err := s.getVersion(t, bucket, fp)
	re := requireCode(t, err, 10, "GetVersion of a missing fingerprint")
	if _, ok := re.(*packer.PackerServiceGetVersionDefault); !ok {
		t.Errorf("error type %T, want *PackerServiceGetVersionDefault", re)
	}
	// A missing bucket is code 5.
	_, err = s.getVersion(t, bucket+"-missing", fp)
	requireCode(t, err, 5, "GetVersion in a missing bucket")
	_, err = s.createVersion(t, bucket+"-missing", fp)
	requireCode(t, err, 5, "CreateVersion in a missing bucket")

	v, err := s.createVersion(t, bucket, fp)
	must(t, err, "CreateVersion")
	if v.ID == "" || v.Name != "v0" || v.Fingerprint != fp || v.BucketName != bucket {
		t.Fatalf("CreateVersion = %s, want an id and name v0", jsonOf(v))
	}
	if v.TemplateType == nil || *v.TemplateType != pm.HashicorpCloudPacker20230101TemplateTypeHCL2 {
		t.Errorf("template_type = %v, want HCL2", v.TemplateType)
	}
	if v.Status == nil || *v.Status == versionActive {
		t.Errorf("new version status = %v, want set and not active", v.Status)
	}
	if v.Builds == nil || len(v.Builds) != 0 {
		t.Errorf("builds = %#v, want []", v.Builds)
	}
	requireRecent(t, "version.created_at", v.CreatedAt)
	if v.AuthorID == "" {
		t.Error("version.author_id is empty")
	}
	_, err = s.createVersion(t, bucket, fp)
	requireCode(t, err, 6, "CreateVersion with an existing fingerprint")

	got, err := s.getVersion(t, bucket, fp)
	must(t, err, "GetVersion")
	if got.ID != v.ID || got.Name != "v0" {
		t.Errorf("GetVersion = %s", jsonOf(got))
	}

	// ListVersions.
	lv := packer.NewPackerServiceListVersionsParamsWithContext(ctx(t))
	lv.LocationOrganizationID, lv.LocationProjectID, lv.BucketName = s.orgID, s.project, bucket
	versions, err := s.packer.PackerServiceListVersions(lv, nil)
	must(t, err, "ListVersions")
	if len(versions.Payload.Versions) != 1 || versions.Payload.Versions[0].Fingerprint != fp {
		t.Errorf("ListVersions = %s", jsonOf(versions.Payload))
	}
	if pg := versions.Payload.Pagination; pg != nil && pg.NextPageToken != "" {
		t.Errorf("single page but next_page_token = %q", pg.NextPageToken)
	}
	lv.BucketName = bucket + "-missing"
	_, err = s.packer.PackerServiceListVersions(lv, nil)
	requireCode(t, err, 5, "ListVersions of a missing bucket")

	// Builds.
	builds, err := s.listBuilds(t, bucket, fp)
	must(t, err, "ListBuilds")
	if len(builds) != 0 {
		t.Errorf("ListBuilds of a new version = %s", jsonOf(builds))
	}
	_, err = s.listBuilds(t, bucket, "missing-fingerprint")
	requireCode(t, err, 10, "ListBuilds of a missing version")

	runA, runB := newUUID(), newUUID()
	a, err := s.createBuild(t, bucket, fp, "null.a", runA)
	must(t, err, "CreateBuild null.a")
	if a.ID == "" || a.ComponentType != "null.a" || a.VersionID != v.ID || a.PackerRunUUID != runA {
		t.Errorf("CreateBuild = %s", jsonOf(a))
	}
	if a.Status == nil || *a.Status != buildUnset {
		t.Errorf("CreateBuild status = %v, want BUILD_UNSET (Packer dereferences it)", a.Status)
	}
	if a.Artifacts == nil || len(a.Artifacts) != 0 {
		t.Errorf("CreateBuild artifacts = %#v, want []", a.Artifacts)
	}
	_, err = s.createBuild(t, bucket, fp, "null.a", newUUID())
	requireCode(t, err, 6, "CreateBuild of an existing component")
	_, err = s.createBuild(t, bucket, "missing-fingerprint", "null.a", runA)
	requireCode(t, err, 10, "CreateBuild in a missing version")
	b, err := s.createBuild(t, bucket, fp, "file.b", runB)
	must(t, err, "CreateBuild file.b")

	// GetBuild.
	gb := packer.NewPackerServiceGetBuildParamsWithContext(ctx(t))
	gb.LocationOrganizationID, gb.LocationProjectID = s.orgID, s.project
	gb.BucketName, gb.Fingerprint, gb.BuildID = bucket, fp, a.ID
	gr, err := s.packer.PackerServiceGetBuild(gb, nil)
	must(t, err, "GetBuild")
	if gr.Payload.Build == nil || gr.Payload.Build.ID != a.ID || gr.Payload.Build.ComponentType != "null.a" {
		t.Errorf("GetBuild = %s", jsonOf(gr.Payload))
	}
	gb.BuildID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
	_, err = s.packer.PackerServiceGetBuild(gb, nil)
	requireCode(t, err, 5, "GetBuild of a missing build")

	// RUNNING, as Packer sends it: artifacts null.
	ra, err := s.updateBuild(t, bucket, fp, a.ID, &UpdateBuildBody{
		Artifacts: nil, PackerRunUUID: runA, Status: statusPtr(buildRunning),
	})
	must(t, err, "UpdateBuild RUNNING")
	if ra.Status == nil || *ra.Status != buildRunning || ra.ID != a.ID {
		t.Errorf("UpdateBuild RUNNING = %s", jsonOf(ra))
	}
	// Heartbeat: the identical update again, idempotent.
	hb, err := s.updateBuild(t, bucket, fp, a.ID, &UpdateBuildBody{
		Artifacts: nil, PackerRunUUID: runA, Status: statusPtr(buildRunning),
	})
	must(t, err, "UpdateBuild heartbeat")
	if hb.Status == nil || *hb.Status != buildRunning || len(hb.Artifacts) != 0 {
		t.Errorf("heartbeat = %s", jsonOf(hb))
	}
	_, err = s.updateBuild(t, bucket, fp, "01HZZZZZZZZZZZZZZZZZZZZZZZ", &UpdateBuildBody{Status: statusPtr(buildRunning)})
	requireCode(t, err, 5, "UpdateBuild of a missing build")

	// DONE with artifacts, labels and metadata.
	labels := map[string]string{"os": "ubuntu", "git_sha": "4f2a9c1e"}
	da, err := s.updateBuild(t, bucket, fp, a.ID, &UpdateBuildBody{
		Artifacts: []*ArtifactBody{
			{ExternalIdentifier: "ami-0123", Region: "us-east-1"},
			{ExternalIdentifier: "ami-4567", Region: "eu-west-1"},
		},
		Labels:                   labels,
		Metadata:                 packerMetadata(),
		PackerRunUUID:            runA,
		Platform:                 "aws",
		SourceExternalIdentifier: "ami-source",
		Status:                   statusPtr(buildDone),
	})
	must(t, err, "UpdateBuild DONE")
	if da.Status == nil || *da.Status != buildDone || da.Platform != "aws" || da.SourceExternalIdentifier != "ami-source" {
		t.Errorf("UpdateBuild DONE = %s", jsonOf(da))
	}
	if !reflect.DeepEqual(da.Labels, labels) {
		t.Errorf("labels = %v, want %v", da.Labels, labels)
	}
	regions := map[string]string{}
	for _, art := range da.Artifacts {
		if art.ID == "" {
			t.Errorf("artifact without id: %s", jsonOf(art))
		}
		requireRecent(t, "artifact.created_at", art.CreatedAt)
		regions[art.ExternalIdentifier] = art.Region
	}
	if !reflect.DeepEqual(regions, map[string]string{"ami-0123": "us-east-1", "ami-4567": "eu-west-1"}) {
		t.Errorf("artifacts = %s", jsonOf(da.Artifacts))
	}
	if da.Metadata == nil {
		t.Errorf("metadata not echoed on the DONE build")
	} else {
		if meta, ok := da.Metadata.Packer.(map[string]any); !ok || meta["version"] != "1.16.0" {
			t.Errorf("metadata.packer = %#v", da.Metadata.Packer)
		}
		if vcs, ok := da.Metadata.Vcs.(map[string]any); !ok || vcs["type"] != "git" {
			t.Errorf("metadata.vcs = %#v", da.Metadata.Vcs)
		}
	}

	// One build of two is done: still v0.
	mid, err := s.getVersion(t, bucket, fp)
	must(t, err, "GetVersion half done")
	if mid.Name != "v0" {
		t.Errorf("version named %q with a build still UNSET, want v0", mid.Name)
	}
	if len(mid.Builds) != 2 {
		t.Errorf("version embeds %d builds, want 2", len(mid.Builds))
	}
	for _, mb := range mid.Builds {
		if mb.Status == nil || mb.VersionID != v.ID {
			t.Errorf("embedded build without status or version_id: %s", jsonOf(mb))
		}
		if mb.ID == b.ID && len(mb.Artifacts) != 0 {
			t.Errorf("a build that is not DONE carries artifacts: %s", jsonOf(mb))
		}
	}

	// The last DONE completes the version: v1, VERSION_ACTIVE, latest channel.
	_, err = s.updateBuild(t, bucket, fp, b.ID, &UpdateBuildBody{
		Artifacts:     []*ArtifactBody{{ExternalIdentifier: "b.img", Region: "out"}},
		Metadata:      packerMetadata(),
		PackerRunUUID: runB,
		Platform:      "packer.file",
		Status:        statusPtr(buildDone),
	})
	must(t, err, "UpdateBuild DONE (last)")
	done, err := s.getVersion(t, bucket, fp)
	must(t, err, "GetVersion complete")
	if done.Name != "v1" {
		t.Errorf("completed version named %q, want v1", done.Name)
	}
	if done.Status == nil || *done.Status != versionActive {
		t.Errorf("completed version status = %v, want VERSION_ACTIVE", done.Status)
	}
	for _, db := range done.Builds {
		if db.Status == nil || *db.Status != buildDone || len(db.Artifacts) == 0 {
			t.Errorf("build of a complete version: %s", jsonOf(db))
		}
	}
	latest, err := s.getChannel(t, bucket, "latest")
	must(t, err, "GetChannel latest")
	if latest.Version == nil || latest.Version.ID != v.ID {
		t.Errorf("latest does not point at the completed version: %s", jsonOf(latest.Version))
	}
	bk, err := s.getBucket(t, bucket)
	must(t, err, "GetBucket after completion")
	if bk.LatestVersion == nil || bk.LatestVersion.Fingerprint != fp || bk.VersionCount != "1" {
		t.Errorf("bucket after completion: latest %s, version_count %q", jsonOf(bk.LatestVersion), bk.VersionCount)
	}
	if !reflect.DeepEqual(bk.Platforms, []string{"aws", "packer.file"}) {
		t.Errorf("bucket platforms = %v, want [aws packer.file]", bk.Platforms)
	}

	// A complete version takes no new build and no change to a DONE build.
	_, err = s.createBuild(t, bucket, fp, "null.c", newUUID())
	requireCode(t, err, 9, "CreateBuild in a complete version")
	_, err = s.updateBuild(t, bucket, fp, a.ID, &UpdateBuildBody{Status: statusPtr(buildRunning)})
	requireCode(t, err, 9, "UpdateBuild of a DONE build")

	// DeleteBuild and DeleteVersion on a second version.
	fp2 := "fingerprint-two"
	_, err = s.createVersion(t, bucket, fp2)
	must(t, err, "CreateVersion 2")
	c, err := s.createBuild(t, bucket, fp2, "null.c", newUUID())
	must(t, err, "CreateBuild null.c")
	db := packer.NewPackerServiceDeleteBuildParamsWithContext(ctx(t))
	db.LocationOrganizationID, db.LocationProjectID = s.orgID, s.project
	db.BucketName, db.Fingerprint, db.BuildID = bucket, fp2, c.ID
	_, err = s.packer.PackerServiceDeleteBuild(db, nil)
	must(t, err, "DeleteBuild")
	gb.Fingerprint, gb.BuildID = fp2, c.ID
	_, err = s.packer.PackerServiceGetBuild(gb, nil)
	requireCode(t, err, 5, "GetBuild after DeleteBuild")
	_, err = s.packer.PackerServiceDeleteBuild(db, nil)
	requireCode(t, err, 5, "DeleteBuild of a missing build")

	dv := packer.NewPackerServiceDeleteVersionParamsWithContext(ctx(t))
	dv.LocationOrganizationID, dv.LocationProjectID = s.orgID, s.project
	dv.BucketName, dv.Fingerprint = bucket, fp2
	_, err = s.packer.PackerServiceDeleteVersion(dv, nil)
	must(t, err, "DeleteVersion")
	_, err = s.getVersion(t, bucket, fp2)
	requireCode(t, err, 10, "GetVersion after DeleteVersion")
	_, err = s.packer.PackerServiceDeleteVersion(dv, nil)
	requireCode(t, err, 5, "DeleteVersion of a missing version")
}

// UpdateVersion complete: true (legacy manual completion) on a version where
// only some builds ran, e.g. packer build -only.
func TestUpdateVersionComplete(t *testing.T) {
	s := h(t)
	bucket := uniq("complete")
	s.createBucket(t, bucket, "", nil)
	fp := "only-run"
	_, err := s.createVersion(t, bucket, fp)
	must(t, err, "CreateVersion")

	a, err := s.createBuild(t, bucket, fp, "null.a", newUUID())
	must(t, err, "CreateBuild null.a")
	_, err = s.createBuild(t, bucket, fp, "null.b", newUUID())
	must(t, err, "CreateBuild null.b")

	// Nothing is DONE yet: refused.
	_, err = s.updateVersion(t, bucket, fp, &pm.HashicorpCloudPacker20230101UpdateVersionBody{Complete: true})
	requireCode(t, err, 9, "UpdateVersion complete with no DONE build")
	_, err = s.updateVersion(t, bucket, "missing-fingerprint", &pm.HashicorpCloudPacker20230101UpdateVersionBody{Complete: true})
	requireCode(t, err, 10, "UpdateVersion of a missing fingerprint")

	_, err = s.updateBuild(t, bucket, fp, a.ID, &UpdateBuildBody{
		Artifacts: []*ArtifactBody{{ExternalIdentifier: "Null", Region: "null"}},
		Metadata:  packerMetadata(), Platform: "null", Status: statusPtr(buildDone),
	})
	must(t, err, "UpdateBuild DONE")
	v, err := s.updateVersion(t, bucket, fp, &pm.HashicorpCloudPacker20230101UpdateVersionBody{Complete: true})
	must(t, err, "UpdateVersion complete")
	if v.Name != "v1" || v.Status == nil || *v.Status != versionActive {
		t.Errorf("UpdateVersion complete = name %q status %v, want v1 VERSION_ACTIVE", v.Name, v.Status)
	}
	// Idempotent.
	again, err := s.updateVersion(t, bucket, fp, &pm.HashicorpCloudPacker20230101UpdateVersionBody{Complete: true})
	must(t, err, "UpdateVersion complete again")
	if again.Name != "v1" {
		t.Errorf("second complete renamed the version to %q", again.Name)
	}
}

// Packer's enforced-provisioner fetch: a bucket no block is linked to has none (an
// empty list, which Packer injects nothing from); a missing bucket answers code 5,
// which Packer ignores too.
func TestGetEnforcedBlocksByBucket(t *testing.T) {
	s := h(t)
	bucket := uniq("enforced")
	s.createBucket(t, bucket, "", nil)
	p := packer.NewPackerServiceGetEnforcedBlocksByBucketParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID, p.BucketName = s.orgID, s.project, bucket
	ok, err := s.packer.PackerServiceGetEnforcedBlocksByBucket(p, nil)
	must(t, err, "GetEnforcedBlocksByBucket")
	if n := len(ok.Payload.EnforcedBlockDetail); n != 0 {
		t.Errorf("an unlinked bucket has %d enforced blocks, want 0", n)
	}
	p.BucketName = uniq("missing")
	_, err = s.packer.PackerServiceGetEnforcedBlocksByBucket(p, nil)
	re := requireCode(t, err, 5, "GetEnforcedBlocksByBucket of a missing bucket")
	if _, ok := re.(*packer.PackerServiceGetEnforcedBlocksByBucketDefault); !ok {
		t.Errorf("error type %T, want *PackerServiceGetEnforcedBlocksByBucketDefault", re)
	}
}
