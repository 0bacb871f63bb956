package contract

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
	"github.com/klauspost/compress/zstd"
)

type SbomFormat = pm.HashicorpCloudPacker20230101SbomFormat

const (
	sbomCycloneDX = pm.HashicorpCloudPacker20230101SbomFormatCYCLONEDX
	sbomSPDX      = pm.HashicorpCloudPacker20230101SbomFormatSPDX
)

// cycloneDX is a minimal CycloneDX JSON document.
var cycloneDX = []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,` +
	`"components":[{"type":"library","name":"openssl","version":"3.0.13"}]}`)

// compressSBOM compresses like Packer's hcp-sbom provisioner: zstd, best compression.
func compressSBOM(t *testing.T, doc []byte) strfmt.Base64 {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	must(t, err, "zstd.NewWriter")
	defer enc.Close()
	return strfmt.Base64(enc.EncodeAll(doc, nil))
}

func (h *harness) uploadSbom(c context.Context, bucket, fingerprint, buildID, name string, format SbomFormat, data strfmt.Base64) (*pm.HashicorpCloudPacker20230101Sbom, error) {
	p := packer.NewPackerServiceUploadSbomParamsWithContext(c)
	p.LocationOrganizationID, p.LocationProjectID = h.orgID, h.project
	p.BucketName, p.Fingerprint, p.BuildID = bucket, fingerprint, buildID
	p.Body = &pm.HashicorpCloudPacker20230101UploadSbomBody{CompressedSbom: data, Format: &format, Name: name}
	resp, err := h.packer.PackerServiceUploadSbom(p, nil)
	if err != nil {
		return nil, err
	}
	return resp.Payload.Sbom, nil
}

func TestSboms(t *testing.T) {
	s := h(t)
	bucket := uniq("sbom")
	s.createBucket(t, bucket, "", nil)
	fp := "sbom-fp"
	_, err := s.createVersion(t, bucket, fp)
	must(t, err, "CreateVersion")
	run := newUUID()
	b, err := s.createBuild(t, bucket, fp, "file.b", run)
	must(t, err, "CreateBuild")
	data := compressSBOM(t, cycloneDX)

	// SBOMs are uploaded while the build runs, before DONE.
	_, err = s.uploadSbom(ctx(t), bucket, fp, b.ID, "golden-sbom", sbomCycloneDX, data)
	skipIfUnimplemented(t, err, "UploadSbom")
	requireCode(t, err, 3, "UploadSbom on a build that is not running")
	_, err = s.updateBuild(t, bucket, fp, b.ID, &UpdateBuildBody{PackerRunUUID: run, Status: statusPtr(buildRunning)})
	must(t, err, "UpdateBuild RUNNING")

	up, err := s.uploadSbom(ctx(t), bucket, fp, b.ID, "golden-sbom", sbomCycloneDX, data)
	must(t, err, "UploadSbom")
	if up == nil || up.ID == "" || up.Name != "golden-sbom" || up.Format == nil || *up.Format != sbomCycloneDX {
		t.Errorf("UploadSbom = %s", jsonOf(up))
	}
	unnamed, err := s.uploadSbom(ctx(t), bucket, fp, b.ID, "", sbomCycloneDX, data)
	must(t, err, "UploadSbom without a name")
	if unnamed == nil || unnamed.Name == "" {
		t.Errorf("an unnamed SBOM got no name: %s", jsonOf(unnamed))
	}

	_, err = s.uploadSbom(ctx(t), bucket, fp, b.ID, "golden-sbom", sbomCycloneDX, data)
	requireCode(t, err, 6, "UploadSbom with an existing name")
	_, err = s.uploadSbom(ctx(t), bucket, fp, b.ID, "spdx-one", sbomSPDX, data)
	requireCode(t, err, 3, "UploadSbom of CycloneDX announced as SPDX")
	_, err = s.uploadSbom(ctx(t), bucket, fp, b.ID, "plain-json", sbomCycloneDX, strfmt.Base64(cycloneDX))
	requireCode(t, err, 3, "UploadSbom that is not zstd-compressed")
	_, err = s.uploadSbom(ctx(t), bucket, fp, "01HZZZZZZZZZZZZZZZZZZZZZZZ", "ghost", sbomCycloneDX, data)
	requireCode(t, err, 5, "UploadSbom to a missing build")

	// ListSboms.
	lp := packer.NewPackerServiceListSbomsParamsWithContext(ctx(t))
	lp.LocationOrganizationID, lp.LocationProjectID = s.orgID, s.project
	lp.BucketName, lp.Fingerprint, lp.BuildID = bucket, fp, b.ID
	list, err := s.packer.PackerServiceListSboms(lp, nil)
	must(t, err, "ListSboms")
	names := map[string]bool{}
	for _, sb := range list.Payload.Sboms {
		names[sb.Name] = true
		if sb.ID == "" || sb.Format == nil {
			t.Errorf("listed SBOM incomplete: %s", jsonOf(sb))
		}
	}
	if len(names) != 2 || !names["golden-sbom"] || !names[unnamed.Name] {
		t.Errorf("ListSboms = %s", jsonOf(list.Payload))
	}

	// GetSbom gives a link that works without the bearer token.
	gp := packer.NewPackerServiceGetSbomParamsWithContext(ctx(t))
	gp.LocationOrganizationID, gp.LocationProjectID = s.orgID, s.project
	gp.BucketName, gp.Fingerprint, gp.BuildID, gp.SbomName = bucket, fp, b.ID, "golden-sbom"
	got, err := s.packer.PackerServiceGetSbom(gp, nil)
	must(t, err, "GetSbom")
	if got.Payload.DownloadURL == "" {
		t.Fatal("GetSbom: empty download_url")
	}
	plain := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed test server
	}
	resp, err := plain.Get(got.Payload.DownloadURL)
	must(t, err, "downloading the SBOM")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("download answered %d: %s", resp.StatusCode, body)
	}
	var want, have any
	must(t, json.Unmarshal(cycloneDX, &want), "decoding the original SBOM")
	must(t, json.Unmarshal(body, &have), "decoding the downloaded SBOM")
	if !reflect.DeepEqual(want, have) {
		t.Errorf("downloaded SBOM differs: %s", body)
	}
	gp.SbomName = "nope"
	_, err = s.packer.PackerServiceGetSbom(gp, nil)
	requireCode(t, err, 5, "GetSbom of a missing SBOM")
}
