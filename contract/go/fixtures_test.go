package contract

import (
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

// Short names for the generated models used throughout the suite.
type (
	Bucket          = pm.HashicorpCloudPacker20230101Bucket
	Version         = pm.HashicorpCloudPacker20230101Version
	Build           = pm.HashicorpCloudPacker20230101Build
	Channel         = pm.HashicorpCloudPacker20230101Channel
	Artifact        = pm.HashicorpCloudPacker20230101Artifact
	ArtifactBody    = pm.HashicorpCloudPacker20230101ArtifactCreateBody
	BuildMetadata   = pm.HashicorpCloudPacker20230101BuildMetadata
	UpdateBuildBody = pm.HashicorpCloudPacker20230101UpdateBuildBody
	BuildStatus     = pm.HashicorpCloudPacker20230101BuildStatus
	VersionStatus   = pm.HashicorpCloudPacker20230101VersionStatus
)

const (
	buildUnset   = pm.HashicorpCloudPacker20230101BuildStatusBUILDUNSET
	buildRunning = pm.HashicorpCloudPacker20230101BuildStatusBUILDRUNNING
	buildDone    = pm.HashicorpCloudPacker20230101BuildStatusBUILDDONE

	versionActive    = pm.HashicorpCloudPacker20230101VersionStatusVERSIONACTIVE
	versionRevoked   = pm.HashicorpCloudPacker20230101VersionStatusVERSIONREVOKED
	versionScheduled = pm.HashicorpCloudPacker20230101VersionStatusVERSIONREVOCATIONSCHEDULED
)

func statusPtr(s BuildStatus) *BuildStatus { return &s }

func hcl2() *pm.HashicorpCloudPacker20230101TemplateType {
	t := pm.HashicorpCloudPacker20230101TemplateTypeHCL2
	return &t
}

func strPtr(s string) *string { return &s }

func int64Ptr(n int64) *int64 { return &n }

// packerMetadata is the metadata object Packer 1.16 sends with BUILD_DONE.
func packerMetadata() *BuildMetadata {
	return &BuildMetadata{
		Packer: map[string]any{
			"version": "1.16.0",
			"plugins": nil,
			"options": map[string]any{
				"debug": false, "force": false, "only": nil, "except": nil,
				"path": "build.pkr.hcl", "var-files": nil, "vars": nil,
			},
			"os": map[string]any{
				"type":    "linux",
				"details": map[string]any{"arch": "amd64", "version": "6.1.0-18-amd64"},
			},
		},
		Vcs: map[string]any{
			"type": "git",
			"details": map[string]any{
				"ref": "main", "commit": "4f2a9c1e0b7d8e6f5a4b3c2d1e0f9a8b7c6d5e4f",
				"author": "Jane Doe <jane@example.com>", "has_uncommitted_changes": false,
			},
		},
	}
}

func (h *harness) createBucket(t *testing.T, name, description string, labels map[string]string) *Bucket {
	t.Helper()
	p := packer.NewPackerServiceCreateBucketParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.Body = &pm.HashicorpCloudPacker20230101CreateBucketBody{Name: name, Description: description, Labels: labels}
	resp, err := h.packer.PackerServiceCreateBucket(p, nil)
	must(t, err, "CreateBucket "+name)
	if resp.Payload == nil || resp.Payload.Bucket == nil {
		t.Fatalf("CreateBucket %s: no bucket in the response", name)
	}
	return resp.Payload.Bucket
}

func (h *harness) getBucket(t *testing.T, name string) (*Bucket, error) {
	t.Helper()
	p := packer.NewPackerServiceGetBucketParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID, p.BucketName = h.orgID, h.project, name
	resp, err := h.packer.PackerServiceGetBucket(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Bucket == nil {
		t.Fatalf("GetBucket %s: no bucket in the response", name)
	}
	return resp.Payload.Bucket, nil
}

func (h *harness) createVersion(t *testing.T, bucket, fingerprint string) (*Version, error) {
	t.Helper()
	p := packer.NewPackerServiceCreateVersionParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID, p.BucketName = h.orgID, h.project, bucket
	p.Body = &pm.HashicorpCloudPacker20230101CreateVersionBody{Fingerprint: fingerprint, TemplateType: hcl2()}
	resp, err := h.packer.PackerServiceCreateVersion(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Version == nil {
		t.Fatalf("CreateVersion %s/%s: no version in the response", bucket, fingerprint)
	}
	return resp.Payload.Version, nil
}

func (h *harness) getVersion(t *testing.T, bucket, fingerprint string) (*Version, error) {
	t.Helper()
	p := packer.NewPackerServiceGetVersionParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.Fingerprint = bucket, fingerprint
	resp, err := h.packer.PackerServiceGetVersion(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Version == nil {
		t.Fatalf("GetVersion %s/%s: no version in the response", bucket, fingerprint)
	}
	return resp.Payload.Version, nil
}

func (h *harness) createBuild(t *testing.T, bucket, fingerprint, component, runUUID string) (*Build, error) {
	t.Helper()
	p := packer.NewPackerServiceCreateBuildParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.Fingerprint = bucket, fingerprint
	p.Body = &pm.HashicorpCloudPacker20230101CreateBuildBody{
		ComponentType: component, PackerRunUUID: runUUID, Status: statusPtr(buildUnset),
	}
	resp, err := h.packer.PackerServiceCreateBuild(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Build == nil {
		t.Fatalf("CreateBuild %s: no build in the response", component)
	}
	return resp.Payload.Build, nil
}

func (h *harness) updateBuild(t *testing.T, bucket, fingerprint, buildID string, body *UpdateBuildBody) (*Build, error) {
	t.Helper()
	p := packer.NewPackerServiceUpdateBuildParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.Fingerprint, p.BuildID = bucket, fingerprint, buildID
	p.Body = body
	resp, err := h.packer.PackerServiceUpdateBuild(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Build == nil {
		t.Fatalf("UpdateBuild %s: no build in the response (Packer would crash)", buildID)
	}
	return resp.Payload.Build, nil
}

func (h *harness) listBuilds(t *testing.T, bucket, fingerprint string) ([]*Build, error) {
	t.Helper()
	p := packer.NewPackerServiceListBuildsParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.Fingerprint = bucket, fingerprint
	resp, err := h.packer.PackerServiceListBuilds(p, nil)
	if err != nil {
		return nil, err
	}
	return resp.Payload.Builds, nil
}

func (h *harness) getChannel(t *testing.T, bucket, name string) (*Channel, error) {
	t.Helper()
	p := packer.NewPackerServiceGetChannelParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.ChannelName = bucket, name
	resp, err := h.packer.PackerServiceGetChannel(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Channel == nil {
		t.Fatalf("GetChannel %s/%s: no channel in the response", bucket, name)
	}
	return resp.Payload.Channel, nil
}

func (h *harness) createChannel(t *testing.T, bucket, name, fingerprint string, restricted bool) (*Channel, error) {
	t.Helper()
	p := packer.NewPackerServiceCreateChannelParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID, p.BucketName = h.orgID, h.project, bucket
	p.Body = &pm.HashicorpCloudPacker20230101CreateChannelBody{
		Name: name, VersionFingerprint: fingerprint, Restricted: restricted,
	}
	resp, err := h.packer.PackerServiceCreateChannel(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Channel == nil {
		t.Fatalf("CreateChannel %s/%s: no channel in the response", bucket, name)
	}
	return resp.Payload.Channel, nil
}

func (h *harness) updateChannel(t *testing.T, bucket, name string, body *pm.HashicorpCloudPacker20230101UpdateChannelBody) (*Channel, error) {
	t.Helper()
	p := packer.NewPackerServiceUpdateChannelParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.ChannelName = bucket, name
	p.Body = body
	resp, err := h.packer.PackerServiceUpdateChannel(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Channel == nil {
		t.Fatalf("UpdateChannel %s/%s: no channel in the response", bucket, name)
	}
	return resp.Payload.Channel, nil
}

func (h *harness) updateVersion(t *testing.T, bucket, fingerprint string, body *pm.HashicorpCloudPacker20230101UpdateVersionBody) (*Version, error) {
	t.Helper()
	p := packer.NewPackerServiceUpdateVersionParamsWithContext(ctx(t))
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.Fingerprint = bucket, fingerprint
	p.Body = body
	resp, err := h.packer.PackerServiceUpdateVersion(p, nil)
	if err != nil {
		return nil, err
	}
	if resp.Payload == nil || resp.Payload.Version == nil {
		t.Fatalf("UpdateVersion %s/%s: no version in the response", bucket, fingerprint)
	}
	return resp.Payload.Version, nil
}

// artifactFor is the artifact a test build publishes for component.
func artifactFor(bucket, fingerprint, component string) *ArtifactBody {
	return &ArtifactBody{ExternalIdentifier: "img-" + bucket + "-" + fingerprint + "-" + component, Region: "us-east-1"}
}

// completeVersion drives a new version through Packer's lifecycle (create,
// builds UNSET, RUNNING, DONE with one artifact each) and returns it complete.
func (h *harness) completeVersion(t *testing.T, bucket, fingerprint string, components ...string) *Version {
	t.Helper()
	if len(components) == 0 {
		components = []string{"file.a"}
	}
	_, err := h.createVersion(t, bucket, fingerprint)
	must(t, err, "CreateVersion "+fingerprint)
	// Every build is registered before any runs, as Packer does.
	type reg struct{ id, run string }
	regs := make([]reg, len(components))
	for i, c := range components {
		run := newUUID()
		b, err := h.createBuild(t, bucket, fingerprint, c, run)
		must(t, err, "CreateBuild "+c)
		regs[i] = reg{b.ID, run}
	}
	for i, c := range components {
		_, err = h.updateBuild(t, bucket, fingerprint, regs[i].id, &UpdateBuildBody{
			PackerRunUUID: regs[i].run, Status: statusPtr(buildRunning),
		})
		must(t, err, "UpdateBuild RUNNING "+c)
		_, err = h.updateBuild(t, bucket, fingerprint, regs[i].id, &UpdateBuildBody{
			Artifacts:     []*ArtifactBody{artifactFor(bucket, fingerprint, c)},
			Labels:        map[string]string{"component": c},
			Metadata:      packerMetadata(),
			PackerRunUUID: regs[i].run,
			Platform:      "aws",
			Status:        statusPtr(buildDone),
		})
		must(t, err, "UpdateBuild DONE "+c)
	}
	v, err := h.getVersion(t, bucket, fingerprint)
	must(t, err, "GetVersion "+fingerprint)
	if v.Name == "v0" {
		t.Fatalf("version %s still v0 after every build is DONE", fingerprint)
	}
	return v
}

// requireRecent asserts a decoded timestamp is set and plausible.
func requireRecent(t *testing.T, what string, dt strfmt.DateTime) {
	t.Helper()
	value := time.Time(dt)
	if value.IsZero() {
		t.Errorf("%s: timestamp is unset", what)
		return
	}
	if d := time.Since(value); d < -time.Minute || d > time.Hour {
		t.Errorf("%s: timestamp %s is not recent", what, dt.String())
	}
}
