package contract

import (
	"testing"

	"github.com/go-openapi/strfmt"
	old "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2021-04-30/client/packer_service"
	om "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2021-04-30/models"
	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
)

// validated is what every generated model implements.
type validated interface {
	Validate(strfmt.Registry) error
}

// decoded fails the test unless the answer decoded and its enums and formats are valid.
func decoded(t *testing.T, what string, err error, payload validated) {
	t.Helper()
	must(t, err, what)
	if err := payload.Validate(strfmt.Default); err != nil {
		t.Errorf("%s: answer does not validate: %v", what, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAPI20210430 drives every operation Packyard serves on the 2021-04-30 API with
// hcp-sdk-go's 2021-04-30 client: Packer 1.9's push, the deprecated data sources' reads,
// channels, revocation, run tasks, deletions; every answer decoded and validated.
func TestAPI20210430(t *testing.T) {
	s := h(t)
	rt, err := newRuntime()
	must(t, err, "runtime")
	c := old.New(rt, nil)
	org, project := s.orgID, s.project
	bucket := uniq("old")
	fp := uniq("fp")
	runUUID := newUUID()

	reg := old.NewPackerServiceGetRegistryParamsWithContext(ctx(t))
	reg.LocationOrganizationID, reg.LocationProjectID = org, project
	gotReg, err := c.PackerServiceGetRegistry(reg, nil)
	decoded(t, "GetRegistry", err, gotReg.Payload)
	if gotReg.Payload.Registry == nil {
		t.Fatal("GetRegistry: registry is null (Packer 1.9 requires it)")
	}

	// Packer 1.9.5: CreateBucket, on code 6 UpdateBucket with "platforms": null.
	cb := old.NewPackerServiceCreateBucketParamsWithContext(ctx(t))
	cb.LocationOrganizationID, cb.LocationProjectID = org, project
	cb.Body = old.PackerServiceCreateBucketBody{BucketSlug: bucket, Description: "d", Labels: map[string]string{"a": "b"}}
	created, err := c.PackerServiceCreateBucket(cb, nil)
	decoded(t, "CreateBucket", err, created.Payload)
	if created.Payload.Bucket.Slug != bucket {
		t.Errorf("CreateBucket slug = %q", created.Payload.Bucket.Slug)
	}
	_, err = c.PackerServiceCreateBucket(cb, nil)
	requireCode(t, err, 6, "CreateBucket again")
	ub := old.NewPackerServiceUpdateBucketParamsWithContext(ctx(t))
	ub.LocationOrganizationID, ub.LocationProjectID, ub.BucketSlug = org, project, bucket
	ub.Body = old.PackerServiceUpdateBucketBody{Description: "d2", Labels: map[string]string{"a": "c"}}
	updated, err := c.PackerServiceUpdateBucket(ub, nil)
	decoded(t, "UpdateBucket", err, updated.Payload)

	// GetIteration by fingerprint: code 10 means "create it".
	gi := old.NewPackerServiceGetIterationParamsWithContext(ctx(t))
	gi.LocationOrganizationID, gi.LocationProjectID, gi.BucketSlug = org, project, bucket
	gi.Fingerprint = &fp
	_, err = c.PackerServiceGetIteration(gi, nil)
	requireCode(t, err, 10, "GetIteration of a new fingerprint")
	ci := old.NewPackerServiceCreateIterationParamsWithContext(ctx(t))
	ci.LocationOrganizationID, ci.LocationProjectID, ci.BucketSlug = org, project, bucket
	ci.Body = old.PackerServiceCreateIterationBody{Fingerprint: fp, TemplateType: om.HashicorpCloudPackerIterationTemplateTypeHCL2.Pointer()}
	it, err := c.PackerServiceCreateIteration(ci, nil)
	decoded(t, "CreateIteration", err, it.Payload)
	iid := it.Payload.Iteration.ID

	lb := old.NewPackerServiceListBuildsParamsWithContext(ctx(t))
	lb.LocationOrganizationID, lb.LocationProjectID, lb.BucketSlug, lb.IterationID = org, project, bucket, iid
	builds, err := c.PackerServiceListBuilds(lb, nil)
	decoded(t, "ListBuilds", err, builds.Payload)

	cbd := old.NewPackerServiceCreateBuildParamsWithContext(ctx(t))
	cbd.LocationOrganizationID, cbd.LocationProjectID, cbd.BucketSlug, cbd.IterationID = org, project, bucket, iid
	cbd.Body = old.PackerServiceCreateBuildBody{Fingerprint: fp, Build: &om.HashicorpCloudPackerBuildCreateBody{
		ComponentType: "null.a", PackerRunUUID: runUUID, Status: om.HashicorpCloudPackerBuildStatusUNSET.Pointer(),
	}}
	build, err := c.PackerServiceCreateBuild(cbd, nil)
	decoded(t, "CreateBuild", err, build.Payload)
	if build.Payload.Build.Status == nil || *build.Payload.Build.Status != om.HashicorpCloudPackerBuildStatusUNSET {
		t.Fatalf("CreateBuild status = %v, want UNSET (Packer 1.9 dereferences it)", build.Payload.Build.Status)
	}
	_, err = c.PackerServiceCreateBuild(cbd, nil)
	requireCode(t, err, 6, "CreateBuild again")
	bid := build.Payload.Build.ID

	upd := old.NewPackerServiceUpdateBuildParamsWithContext(ctx(t))
	upd.LocationOrganizationID, upd.LocationProjectID, upd.BuildID = org, project, bid
	upd.Body = old.PackerServiceUpdateBuildBody{Updates: &om.HashicorpCloudPackerBuildUpdates{
		PackerRunUUID: runUUID, Status: om.HashicorpCloudPackerBuildStatusRUNNING.Pointer(),
	}}
	running, err := c.PackerServiceUpdateBuild(upd, nil)
	decoded(t, "UpdateBuild RUNNING", err, running.Payload)
	upd.Body = old.PackerServiceUpdateBuildBody{Updates: &om.HashicorpCloudPackerBuildUpdates{
		PackerRunUUID: runUUID, CloudProvider: "aws", Status: om.HashicorpCloudPackerBuildStatusDONE.Pointer(),
		Labels: map[string]string{"os": "linux"},
		Images: []*om.HashicorpCloudPackerImageCreateBody{{ImageID: "ami-0123", Region: "us-east-1"}},
	}}
	done, err := c.PackerServiceUpdateBuild(upd, nil)
	decoded(t, "UpdateBuild DONE", err, done.Payload)

	// The iteration, by each of its identifiers: complete, numbered 1, with its images.
	for what, params := range map[string]func(*old.PackerServiceGetIterationParams){
		"fingerprint":         func(p *old.PackerServiceGetIterationParams) { p.Fingerprint = &fp },
		"iteration_id":        func(p *old.PackerServiceGetIterationParams) { p.IterationID = &iid },
		"incremental_version": func(p *old.PackerServiceGetIterationParams) { p.IncrementalVersion = ptr(int32(1)) },
	} {
		g := old.NewPackerServiceGetIterationParamsWithContext(ctx(t))
		g.LocationOrganizationID, g.LocationProjectID, g.BucketSlug = org, project, bucket
		params(g)
		got, err := c.PackerServiceGetIteration(g, nil)
		decoded(t, "GetIteration by "+what, err, got.Payload)
		i := got.Payload.Iteration
		if i.ID != iid || !i.Complete || i.IncrementalVersion != 1 || len(i.Builds) != 1 ||
			len(i.Builds[0].Images) != 1 || i.Builds[0].Images[0].ImageID != "ami-0123" || i.Builds[0].IterationID != iid {
			t.Errorf("GetIteration by %s = %s", what, jsonOf(i))
		}
	}
	// The same version through 2023-01-01.
	gv := packer.NewPackerServiceGetVersionParamsWithContext(ctx(t))
	gv.LocationOrganizationID, gv.LocationProjectID, gv.BucketName, gv.Fingerprint = org, project, bucket, fp
	v, err := s.packer.PackerServiceGetVersion(gv, nil)
	must(t, err, "GetVersion (2023)")
	if v.Payload.Version.ID != iid || v.Payload.Version.Name != "v1" {
		t.Errorf("GetVersion (2023) = %s, want id %s named v1", jsonOf(v.Payload.Version), iid)
	}

	gb := old.NewPackerServiceGetBuildParamsWithContext(ctx(t))
	gb.LocationOrganizationID, gb.LocationProjectID, gb.BuildID = org, project, bid
	gotBuild, err := c.PackerServiceGetBuild(gb, nil)
	decoded(t, "GetBuild", err, gotBuild.Payload)
	li := old.NewPackerServiceListIterationsParamsWithContext(ctx(t))
	li.LocationOrganizationID, li.LocationProjectID, li.BucketSlug = org, project, bucket
	iterations, err := c.PackerServiceListIterations(li, nil)
	decoded(t, "ListIterations", err, iterations.Payload)
	gbk := old.NewPackerServiceGetBucketParamsWithContext(ctx(t))
	gbk.LocationOrganizationID, gbk.LocationProjectID, gbk.BucketSlug = org, project, bucket
	gotBucket, err := c.PackerServiceGetBucket(gbk, nil)
	decoded(t, "GetBucket", err, gotBucket.Payload)
	if gotBucket.Payload.Bucket.LatestVersion != 1 || gotBucket.Payload.Bucket.LatestIteration == nil {
		t.Errorf("GetBucket = %s", jsonOf(gotBucket.Payload.Bucket))
	}
	lbk := old.NewPackerServiceListBucketsParamsWithContext(ctx(t))
	lbk.LocationOrganizationID, lbk.LocationProjectID = org, project
	buckets, err := c.PackerServiceListBuckets(lbk, nil)
	decoded(t, "ListBuckets", err, buckets.Payload)
	anc := old.NewPackerServiceListBucketAncestryParamsWithContext(ctx(t))
	anc.LocationOrganizationID, anc.LocationProjectID, anc.BucketSlug = org, project, bucket
	ancestry, err := c.PackerServiceListBucketAncestry(anc, nil)
	decoded(t, "ListBucketAncestry", err, ancestry.Payload)

	// Channels: what hcp-packer-iteration / hcp-packer-image and provider < 0.84 read.
	cc := old.NewPackerServiceCreateChannelParamsWithContext(ctx(t))
	cc.LocationOrganizationID, cc.LocationProjectID, cc.BucketSlug = org, project, bucket
	cc.Body = old.PackerServiceCreateChannelBody{Slug: "release", IterationID: iid,
		Restriction: om.HashicorpCloudPackerCreateChannelRequestRestrictionRESTRICTED.Pointer()}
	channel, err := c.PackerServiceCreateChannel(cc, nil)
	decoded(t, "CreateChannel", err, channel.Payload)
	ucp := old.NewPackerServiceUpdateChannelParamsWithContext(ctx(t))
	ucp.LocationOrganizationID, ucp.LocationProjectID, ucp.BucketSlug, ucp.Slug = org, project, bucket, "release"
	ucp.Body = old.PackerServiceUpdateChannelBody{Mask: "restriction",
		Restriction: om.HashicorpCloudPackerUpdateChannelRequestRestrictionUNRESTRICTED.Pointer()}
	uc, err := c.PackerServiceUpdateChannel(ucp, nil)
	decoded(t, "UpdateChannel", err, uc.Payload)
	gc := old.NewPackerServiceGetChannelParamsWithContext(ctx(t))
	gc.LocationOrganizationID, gc.LocationProjectID, gc.BucketSlug, gc.Slug = org, project, bucket, "release"
	gotChannel, err := c.PackerServiceGetChannel(gc, nil)
	decoded(t, "GetChannel", err, gotChannel.Payload)
	ch := gotChannel.Payload.Channel
	if ch.Restricted || ch.Iteration == nil || ch.Iteration.ID != iid || len(ch.Iteration.Builds) != 1 ||
		ch.Iteration.BucketSlug != bucket || ch.Iteration.Builds[0].Images[0].Region != "us-east-1" {
		t.Errorf("GetChannel = %s", jsonOf(ch))
	}
	lc := old.NewPackerServiceListChannelsParamsWithContext(ctx(t))
	lc.LocationOrganizationID, lc.LocationProjectID, lc.BucketSlug = org, project, bucket
	channels, err := c.PackerServiceListChannels(lc, nil)
	decoded(t, "ListChannels", err, channels.Payload)
	lh := old.NewPackerServiceListChannelHistoryParamsWithContext(ctx(t))
	lh.LocationOrganizationID, lh.LocationProjectID, lh.BucketSlug, lh.Slug = org, project, bucket, "release"
	history, err := c.PackerServiceListChannelHistory(lh, nil)
	decoded(t, "ListChannelHistory", err, history.Payload)

	// Revocation: scheduled, then restored.
	ui := old.NewPackerServiceUpdateIterationParamsWithContext(ctx(t))
	ui.LocationOrganizationID, ui.LocationProjectID, ui.IterationID = org, project, iid
	ui.Body = old.PackerServiceUpdateIterationBody{BucketSlug: bucket, RevokeIn: "3600s", RevocationMessage: "CVE"}
	revoked, err := c.PackerServiceUpdateIteration(ui, nil)
	decoded(t, "UpdateIteration revoke", err, revoked.Payload)
	if revoked.Payload.Iteration.RevocationType == nil || *revoked.Payload.Iteration.RevocationType != om.HashicorpCloudPackerIterationRevocationTypeMANUAL {
		t.Errorf("UpdateIteration revoke = %s", jsonOf(revoked.Payload.Iteration))
	}
	ui.Body = old.PackerServiceUpdateIterationBody{BucketSlug: bucket, Restore: true}
	restored, err := c.PackerServiceUpdateIteration(ui, nil)
	decoded(t, "UpdateIteration restore", err, restored.Payload)

	// Run tasks, as in 2023-01-01; registry changes only there.
	hm := old.NewPackerServiceRegenerateTFCRunTaskHmacKeyParamsWithContext(ctx(t))
	hm.LocationOrganizationID, hm.LocationProjectID = org, project
	key, err := c.PackerServiceRegenerateTFCRunTaskHmacKey(hm, nil)
	decoded(t, "RegenerateTFCRunTaskHmacKey", err, key.Payload)
	rta := old.NewPackerServiceGetRegistryTFCRunTaskAPIParamsWithContext(ctx(t))
	rta.LocationOrganizationID, rta.LocationProjectID, rta.TaskType = org, project, "validation"
	api, err := c.PackerServiceGetRegistryTFCRunTaskAPI(rta, nil)
	decoded(t, "GetRegistryTFCRunTaskAPI", err, api.Payload)
	cr := old.NewPackerServiceCreateRegistryParamsWithContext(ctx(t))
	cr.LocationOrganizationID, cr.LocationProjectID = org, project
	_, err = c.PackerServiceCreateRegistry(cr, nil)
	requireCode(t, err, 12, "CreateRegistry (2021)")

	// Deletions.
	dc := old.NewPackerServiceDeleteChannelParamsWithContext(ctx(t))
	dc.LocationOrganizationID, dc.LocationProjectID, dc.BucketSlug, dc.Slug = org, project, bucket, "release"
	_, err = c.PackerServiceDeleteChannel(dc, nil)
	must(t, err, "DeleteChannel")
	ci.Body.Fingerprint = fp + "-2"
	second, err := c.PackerServiceCreateIteration(ci, nil)
	decoded(t, "CreateIteration 2", err, second.Payload)
	cbd.IterationID, cbd.Body.Fingerprint = second.Payload.Iteration.ID, fp+"-2"
	build2, err := c.PackerServiceCreateBuild(cbd, nil)
	decoded(t, "CreateBuild 2", err, build2.Payload)
	db := old.NewPackerServiceDeleteBuildParamsWithContext(ctx(t))
	db.LocationOrganizationID, db.LocationProjectID, db.BuildID = org, project, build2.Payload.Build.ID
	_, err = c.PackerServiceDeleteBuild(db, nil)
	must(t, err, "DeleteBuild")
	di := old.NewPackerServiceDeleteIterationParamsWithContext(ctx(t))
	di.LocationOrganizationID, di.LocationProjectID, di.IterationID = org, project, second.Payload.Iteration.ID
	di.BucketSlug = &bucket
	_, err = c.PackerServiceDeleteIteration(di, nil)
	must(t, err, "DeleteIteration")
	_, err = c.PackerServiceGetBuild(gb, nil)
	must(t, err, "GetBuild after deleting another iteration")
	dbk := old.NewPackerServiceDeleteBucketParamsWithContext(ctx(t))
	dbk.LocationOrganizationID, dbk.LocationProjectID, dbk.BucketSlug = org, project, bucket
	_, err = c.PackerServiceDeleteBucket(dbk, nil)
	must(t, err, "DeleteBucket")
	_, err = c.PackerServiceGetBucket(gbk, nil)
	requireCode(t, err, 5, "GetBucket after DeleteBucket")
}
