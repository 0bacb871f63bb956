package contract

// Packer's push sequence (packer build with an hcp_packer_registry block and
// two sources), driven through the SDK the way Packer 1.16 drives it.

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/go-openapi/strfmt"
	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

type pushTemplate struct {
	bucket       string
	description  string
	bucketLabels map[string]string
	buildLabels  map[string]string
	fingerprint  string
	channels     []string
	// sources and what each one publishes.
	sources map[string]pushSource
}

type pushSource struct {
	platform string
	artifact *ArtifactBody
	sourceID string
	sbom     strfmt.Base64 // zstd-compressed CycloneDX, uploaded before DONE when set
}

type channelRound struct {
	component string
	err       error
	channel   *Channel
}

type pushResult struct {
	created       bool // the bucket was created by this run
	updated       bool // the bucket's metadata was patched by this run
	version       *Version
	channelRounds []channelRound // one per DONE, in the order they happened
}

// packerPush replays Packer's calls: GetBucket (→ CreateBucket on 5, or
// UpdateBucket when metadata differs), GetVersion (→ CreateVersion on 10),
// ListBuilds, CreateBuild per missing source in parallel (6 tolerated),
// GetEnforcedBlocksByBucket (5 and 12 tolerated), then per build in parallel
// RUNNING, a heartbeat, UploadSbom, DONE, and UpdateChannel for each channel.
func packerPush(t *testing.T, s *harness, tpl pushTemplate) pushResult {
	t.Helper()
	var res pushResult
	loc := func() (string, string) { return s.orgID, s.project }
	c := ctx(t) // one context for the whole run, shared by its goroutines

	// Steps 2/3: the bucket.
	gb := packer.NewPackerServiceGetBucketParams()
	gb.LocationOrganizationID, gb.LocationProjectID = loc()
	gb.BucketName = tpl.bucket
	got, err := s.packer.PackerServiceGetBucket(gb, nil)
	switch {
	case packerCode(err) == 5:
		cb := packer.NewPackerServiceCreateBucketParams()
		cb.LocationOrganizationID, cb.LocationProjectID = loc()
		cb.Body = &pm.HashicorpCloudPacker20230101CreateBucketBody{
			Name: tpl.bucket, Description: tpl.description, Labels: tpl.bucketLabels,
		}
		_, err = s.packer.PackerServiceCreateBucket(cb, nil)
		must(t, err, "push: CreateBucket")
		res.created = true
	case err != nil:
		t.Fatalf("push: failed to initialize bucket: %v", err)
	default:
		b := got.Payload.Bucket
		if b.Description != tpl.description || !reflect.DeepEqual(b.Labels, tpl.bucketLabels) {
			ub := packer.NewPackerServiceUpdateBucketParamsWithContext(c)
			ub.LocationOrganizationID, ub.LocationProjectID = loc()
			ub.BucketName = tpl.bucket
			ub.Body = &pm.HashicorpCloudPacker20230101UpdateBucketBody{
				Description: tpl.description, Labels: tpl.bucketLabels, Platforms: nil,
			}
			_, err = s.packer.PackerServiceUpdateBucket(ub, nil)
			must(t, err, "push: UpdateBucket")
			res.updated = true
		}
	}

	// Steps 4/5: the version.
	gv := packer.NewPackerServiceGetVersionParams()
	gv.LocationOrganizationID, gv.LocationProjectID = loc()
	gv.BucketName, gv.Fingerprint = tpl.bucket, tpl.fingerprint
	var version *Version
	vr, err := s.packer.PackerServiceGetVersion(gv, nil)
	switch {
	case packerCode(err) == 10:
		cv := packer.NewPackerServiceCreateVersionParamsWithContext(c)
		cv.LocationOrganizationID, cv.LocationProjectID = loc()
		cv.BucketName = tpl.bucket
		cv.Body = &pm.HashicorpCloudPacker20230101CreateVersionBody{Fingerprint: tpl.fingerprint, TemplateType: hcl2()}
		created, err := s.packer.PackerServiceCreateVersion(cv, nil)
		must(t, err, "push: CreateVersion")
		version = created.Payload.Version
	case err != nil:
		t.Fatalf("push: GetVersion answered something other than code 10: %v", err)
	default:
		version = vr.Payload.Version
	}
	if version == nil || version.ID == "" {
		t.Fatalf("push: nil version or no id: %s", jsonOf(version))
	}
	if version.Name != "v0" {
		t.Fatalf("push: The version associated to the fingerprint %s is complete (%s)", tpl.fingerprint, version.Name)
	}
	if tt := version.TemplateType; tt != nil && *tt != pm.HashicorpCloudPacker20230101TemplateTypeTEMPLATETYPEUNSET &&
		*tt != pm.HashicorpCloudPacker20230101TemplateTypeHCL2 {
		t.Fatalf("push: template type changed from %s to HCL2", *tt)
	}

	// Step 6: existing builds, matched by component_type (no pagination).
	existing, err := s.listBuilds(t, tpl.bucket, tpl.fingerprint)
	must(t, err, "push: ListBuilds")
	type local struct {
		id, run string
		done    bool
	}
	builds := map[string]*local{}
	for _, b := range existing {
		if b.Status == nil {
			t.Fatalf("push: listed build without status (Packer would crash): %s", jsonOf(b))
		}
		builds[b.ComponentType] = &local{id: b.ID, run: b.PackerRunUUID,
			done: *b.Status == buildDone || len(b.Artifacts) > 0}
	}

	// Step 7: create the missing builds, all in parallel.
	runUUID := newUUID()
	var mu sync.Mutex
	var wg sync.WaitGroup
	createErrs := map[string]error{}
	for component := range tpl.sources {
		if _, ok := builds[component]; ok {
			continue
		}
		wg.Add(1)
		go func(component string) {
			defer wg.Done()
			p := packer.NewPackerServiceCreateBuildParamsWithContext(c)
			p.LocationOrganizationID, p.LocationProjectID = loc()
			p.BucketName, p.Fingerprint = tpl.bucket, tpl.fingerprint
			p.Body = &pm.HashicorpCloudPacker20230101CreateBuildBody{
				Artifacts: nil, ComponentType: component, PackerRunUUID: runUUID, Status: statusPtr(buildUnset),
			}
			resp, err := s.packer.PackerServiceCreateBuild(p, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				createErrs[component] = err
				return
			}
			b := resp.Payload.Build
			if b == nil || b.ID == "" || b.Status == nil || b.ComponentType != component {
				createErrs[component] = fmt.Errorf("bad CreateBuild answer: %s", jsonOf(b))
				return
			}
			builds[component] = &local{id: b.ID, run: b.PackerRunUUID}
		}(component)
	}
	wg.Wait()
	for component, err := range createErrs {
		if packerCode(err) == 6 {
			continue // Packer ignores AlreadyExists (quirk Q3)
		}
		t.Fatalf("push: CreateBuild %s: %v", component, err)
	}

	// Step 8: enforced provisioners; 5 and 12 mean "none".
	eb := packer.NewPackerServiceGetEnforcedBlocksByBucketParamsWithContext(c)
	eb.LocationOrganizationID, eb.LocationProjectID = loc()
	eb.BucketName = tpl.bucket
	if _, err := s.packer.PackerServiceGetEnforcedBlocksByBucket(eb, nil); err != nil {
		if code := packerCode(err); code != 5 && code != 12 {
			t.Fatalf("push: GetEnforcedBlocksByBucket aborted the build: %v", err)
		}
	}

	// Steps 9-13: each build in its own goroutine. RUNNING and the heartbeat run
	// concurrently; builds then finish one after the other (finishMu), as
	// builds of different durations do, so the first DONE's channel update
	// meets an incomplete version and the last one a complete version.
	var finishMu sync.Mutex
	runErrs := map[string]error{}
	for component, src := range tpl.sources {
		l := builds[component]
		if l == nil || l.done {
			continue // "skipping already done build"
		}
		wg.Add(1)
		go func(component string, src pushSource, l *local) {
			defer wg.Done()
			fail := func(err error) {
				mu.Lock()
				runErrs[component] = err
				mu.Unlock()
			}
			update := func(body *UpdateBuildBody) (*Build, error) {
				p := packer.NewPackerServiceUpdateBuildParamsWithContext(c)
				p.LocationOrganizationID, p.LocationProjectID = loc()
				p.BucketName, p.Fingerprint, p.BuildID = tpl.bucket, tpl.fingerprint, l.id
				p.Body = body
				resp, err := s.packer.PackerServiceUpdateBuild(p, nil)
				if err != nil {
					return nil, err
				}
				if resp.Payload.Build == nil {
					return nil, fmt.Errorf("UpdateBuild answered no build (Packer would crash)")
				}
				return resp.Payload.Build, nil
			}
			running := &UpdateBuildBody{Artifacts: nil, PackerRunUUID: l.run, Status: statusPtr(buildRunning)}
			for i := 0; i < 2; i++ { // RUNNING, then one heartbeat
				if _, err := update(running); err != nil {
					fail(err)
					return
				}
			}
			finishMu.Lock()
			defer finishMu.Unlock()
			if len(src.sbom) > 0 { // step 11: hcp-sbom provisioner output
				if _, err := s.uploadSbom(c, tpl.bucket, tpl.fingerprint, l.id, "golden-sbom", sbomCycloneDX, src.sbom); err != nil {
					fail(fmt.Errorf("failed to upload sboms: %w", err))
					return
				}
			}
			done, err := update(&UpdateBuildBody{
				Artifacts:                []*ArtifactBody{src.artifact},
				Labels:                   tpl.buildLabels,
				Metadata:                 packerMetadata(),
				PackerRunUUID:            l.run,
				Platform:                 src.platform,
				SourceExternalIdentifier: src.sourceID,
				Status:                   statusPtr(buildDone),
			})
			if err != nil {
				fail(err)
				return
			}
			if done.Status == nil || *done.Status != buildDone {
				fail(fmt.Errorf("DONE answered status %v", done.Status))
				return
			}
			for _, name := range tpl.channels {
				ch, err := s.updateChannelRaw(c, tpl.bucket, name, &pm.HashicorpCloudPacker20230101UpdateChannelBody{
					UpdateMask: "versionFingerprint", VersionFingerprint: tpl.fingerprint,
				})
				mu.Lock()
				res.channelRounds = append(res.channelRounds, channelRound{component: component, err: err, channel: ch})
				mu.Unlock()
				if err != nil {
					break // Packer stops at the first failing channel; the build still succeeds
				}
			}
		}(component, src, l)
	}
	wg.Wait()
	for component, err := range runErrs {
		t.Fatalf("push: build %s failed to publish: %v", component, err)
	}

	final, err := s.getVersion(t, tpl.bucket, tpl.fingerprint)
	must(t, err, "push: GetVersion after the builds")
	res.version = final
	return res
}

// updateChannelRaw is UpdateChannel without test assertions, safe in goroutines.
func (h *harness) updateChannelRaw(c context.Context, bucket, name string, body *pm.HashicorpCloudPacker20230101UpdateChannelBody) (*Channel, error) {
	p := packer.NewPackerServiceUpdateChannelParamsWithContext(c)
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.ChannelName = bucket, name
	p.Body = body
	resp, err := h.packer.PackerServiceUpdateChannel(p, nil)
	if err != nil {
		return nil, err
	}
	return resp.Payload.Channel, nil
}

func TestPackerPushSequence(t *testing.T) {
	s := h(t)
	bucket := uniq("golden")
	tpl := pushTemplate{
		bucket:       bucket,
		description:  "Base image",
		bucketLabels: map[string]string{"team": "platform"},
		buildLabels:  map[string]string{"os": "ubuntu"},
		fingerprint:  "01J9ZQ7X3M5V6K8T2N4R0A1B2C",
		sources: map[string]pushSource{
			"null.a": {platform: "null", artifact: &ArtifactBody{ExternalIdentifier: "Null", Region: "null"}, sourceID: "null"},
			"file.b": {platform: "packer.file", artifact: &ArtifactBody{ExternalIdentifier: "b.img", Region: "out"}, sourceID: "in.img"},
		},
	}

	// First run: no bucket yet, no channels configured.
	first := packerPush(t, s, tpl)
	if !first.created || first.updated {
		t.Errorf("first run: created=%v updated=%v, want the bucket created", first.created, first.updated)
	}
	if first.version.Name != "v1" || first.version.Status == nil || *first.version.Status != versionActive {
		t.Errorf("first run: version %q %v, want v1 VERSION_ACTIVE", first.version.Name, first.version.Status)
	}

	// The stored bucket matches the template, so a rerun would not PATCH it.
	b, err := s.getBucket(t, bucket)
	must(t, err, "GetBucket")
	if b.Description != tpl.description || !reflect.DeepEqual(b.Labels, tpl.bucketLabels) {
		t.Errorf("bucket metadata %q %v differs from the template", b.Description, b.Labels)
	}
	if !reflect.DeepEqual(b.Platforms, []string{"null", "packer.file"}) {
		t.Errorf("bucket platforms = %v", b.Platforms)
	}

	// Rerunning the same fingerprint: Packer sees a complete version and stops.
	v, err := s.getVersion(t, bucket, tpl.fingerprint)
	must(t, err, "GetVersion of the completed fingerprint")
	if v.Name == "v0" {
		t.Error("completed fingerprint still reads as v0: Packer would rebuild it")
	}

	// The channel exists beforehand (Packer does not create channels).
	_, err = s.createChannel(t, bucket, "dev", "", false)
	must(t, err, "CreateChannel dev")

	// Second run: new fingerprint, new description (→ UpdateBucket), channel dev.
	tpl.fingerprint = "01J9ZQ7X3M5V6K8T2N4R0A1B2D"
	tpl.description = "Base image, hardened"
	tpl.channels = []string{"dev"}
	fileB := tpl.sources["file.b"]
	fileB.sbom = compressSBOM(t, cycloneDX)
	tpl.sources["file.b"] = fileB
	second := packerPush(t, s, tpl)
	if second.created || !second.updated {
		t.Errorf("second run: created=%v updated=%v, want the bucket patched", second.created, second.updated)
	}
	ver := second.version
	if ver.Name != "v2" || ver.Status == nil || *ver.Status != versionActive {
		t.Errorf("second run: version %q %v, want v2 VERSION_ACTIVE", ver.Name, ver.Status)
	}
	var components []string
	for _, bd := range ver.Builds {
		components = append(components, bd.ComponentType)
		if bd.Status == nil || *bd.Status != buildDone || len(bd.Artifacts) != 1 {
			t.Errorf("build %s: %s", bd.ComponentType, jsonOf(bd))
		}
		if !reflect.DeepEqual(bd.Labels, tpl.buildLabels) {
			t.Errorf("build %s labels = %v, want %v", bd.ComponentType, bd.Labels, tpl.buildLabels)
		}
		src := tpl.sources[bd.ComponentType]
		if bd.Platform != src.platform || bd.SourceExternalIdentifier != src.sourceID {
			t.Errorf("build %s platform/source = %q/%q", bd.ComponentType, bd.Platform, bd.SourceExternalIdentifier)
		}
		if len(bd.Artifacts) == 1 && (bd.Artifacts[0].ExternalIdentifier != src.artifact.ExternalIdentifier ||
			bd.Artifacts[0].Region != src.artifact.Region) {
			t.Errorf("build %s artifact = %s", bd.ComponentType, jsonOf(bd.Artifacts[0]))
		}
	}
	sort.Strings(components)
	if !reflect.DeepEqual(components, []string{"file.b", "null.a"}) {
		t.Errorf("version builds = %v", components)
	}
	for _, bd := range ver.Builds {
		if bd.ComponentType != "file.b" {
			continue
		}
		lp := packer.NewPackerServiceListSbomsParamsWithContext(ctx(t))
		lp.LocationOrganizationID, lp.LocationProjectID = s.orgID, s.project
		lp.BucketName, lp.Fingerprint, lp.BuildID = bucket, tpl.fingerprint, bd.ID
		sboms, err := s.packer.PackerServiceListSboms(lp, nil)
		must(t, err, "ListSboms of file.b")
		if len(sboms.Payload.Sboms) != 1 || sboms.Payload.Sboms[0].Name != "golden-sbom" {
			t.Errorf("file.b SBOMs = %s", jsonOf(sboms.Payload))
		}
	}

	// Channel rounds (quirk Q4): the first DONE's update is refused because the
	// version is still v0; the last DONE's update assigns the version.
	rounds := second.channelRounds
	if len(rounds) != 2 {
		t.Fatalf("%d channel rounds, want one per DONE (2)", len(rounds))
	}
	requireCode(t, rounds[0].err, 9, "first channel update (version incomplete)")
	if rounds[1].err != nil {
		t.Fatalf("last channel update failed: %v", rounds[1].err)
	}
	if c := rounds[1].channel; c == nil || c.Version == nil || c.Version.Fingerprint != tpl.fingerprint {
		t.Errorf("last channel update answered %s", jsonOf(c))
	}
	dev, err := s.getChannel(t, bucket, "dev")
	must(t, err, "GetChannel dev")
	requireEmbeddedVersion(t, "dev after the push", dev, ver)
	latest, err := s.getChannel(t, bucket, "latest")
	must(t, err, "GetChannel latest")
	requireEmbeddedVersion(t, "latest after the push", latest, ver)
}
