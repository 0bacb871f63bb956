package contract

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	orgsvc "github.com/hashicorp/hcp-sdk-go/clients/cloud-resource-manager/stable/2019-12-10/client/organization_service"
	projsvc "github.com/hashicorp/hcp-sdk-go/clients/cloud-resource-manager/stable/2019-12-10/client/project_service"
	rmm "github.com/hashicorp/hcp-sdk-go/clients/cloud-resource-manager/stable/2019-12-10/models"
	"github.com/hashicorp/hcp-sdk-go/config"
)

// The env block is what a user pastes into their shell: TLS on, self-signed.
func TestEnvBlockConfiguresTLS(t *testing.T) {
	s := h(t)
	if got := os.Getenv("HCP_API_TLS"); got != "insecure" {
		t.Errorf("HCP_API_TLS = %q, want insecure for the generated self-signed certificate", got)
	}
	if got := os.Getenv("HCP_AUTH_URL"); !strings.HasPrefix(got, "https://") {
		t.Errorf("HCP_AUTH_URL = %q, the SDK requires https", got)
	}
	if os.Getenv("HCP_API_ADDRESS") == "" || strings.Contains(os.Getenv("HCP_API_ADDRESS"), "://") {
		t.Errorf("HCP_API_ADDRESS = %q, want host:port without a scheme", os.Getenv("HCP_API_ADDRESS"))
	}
	for _, v := range []string{s.orgID, s.project, s.clientID, os.Getenv("HCP_CLIENT_SECRET")} {
		if v == "" {
			t.Fatalf("env block left a credential or tenant id empty")
		}
	}
}

// The SDK ran the client-credentials flow and cached the token in our HOME.
func TestOAuthClientCredentialsFlow(t *testing.T) {
	s := h(t)
	p := packer.NewPackerServiceGetRegistryParams()
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	_, err := s.packer.PackerServiceGetRegistry(p, nil)
	must(t, err, "GetRegistry")

	raw, err := os.ReadFile(filepath.Join(s.home, ".config", "hcp", "creds-cache.json"))
	must(t, err, "reading the SDK token cache in the isolated HOME")
	var cache struct {
		ServicePrincipals map[string]struct {
			AccessToken       string    `json:"access_token"`
			AccessTokenExpiry time.Time `json:"access_token_expiry"`
		} `json:"service-principals"`
	}
	must(t, json.Unmarshal(raw, &cache), "decoding the token cache")
	entry, ok := cache.ServicePrincipals[s.clientID]
	if !ok || entry.AccessToken == "" {
		t.Fatalf("no cached token for client %s in %s", s.clientID, raw)
	}
	if time.Until(entry.AccessTokenExpiry) < 5*time.Minute {
		t.Errorf("token expires at %s: expires_in missing or too short", entry.AccessTokenExpiry)
	}

	// Wrong credentials: the token endpoint refuses and no API call is made.
	rt, err := newRuntime(config.WithClientCredentials("contract-bogus-client", "wrong-secret"))
	must(t, err, "building a client with bogus credentials")
	_, err = packer.New(rt, nil).PackerServiceGetRegistry(p, nil)
	if err == nil {
		t.Fatal("GetRegistry with bogus client credentials succeeded")
	}
	if !strings.Contains(err.Error(), "oauth2") {
		t.Errorf("expected an oauth2 token error, got %v", err)
	}
}

func TestGetRegistry(t *testing.T) {
	s := h(t)
	p := packer.NewPackerServiceGetRegistryParams()
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	resp, err := s.packer.PackerServiceGetRegistry(p, nil)
	must(t, err, "GetRegistry")
	r := resp.Payload.Registry
	if r == nil {
		t.Fatal("GetRegistry: registry is null (Packer: no active registry)")
	}
	if r.ID == "" {
		t.Error("registry.id is empty")
	}
	if r.Location == nil || r.Location.OrganizationID != s.orgID || r.Location.ProjectID != s.project {
		t.Errorf("registry.location = %s, want org %s project %s", jsonOf(r.Location), s.orgID, s.project)
	}
	if r.Config == nil || r.Config.FeatureTier == nil {
		t.Errorf("registry.config.feature_tier missing: %s", jsonOf(r.Config))
	}
	requireRecent(t, "registry.created_at", r.CreatedAt)

	// A project the principal cannot see.
	p = packer.NewPackerServiceGetRegistryParams()
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, "00000000-0000-4000-8000-000000000000"
	_, err = s.packer.PackerServiceGetRegistry(p, nil)
	re := requireCode(t, err, 5, "GetRegistry of an unknown project")
	if _, ok := re.(*packer.PackerServiceGetRegistryDefault); !ok {
		t.Errorf("error type %T, want *PackerServiceGetRegistryDefault", re)
	}
}

func TestResourceManager(t *testing.T) {
	s := h(t)

	// OrganizationService_List: Packer needs exactly one organization.
	orgs, err := s.orgs.OrganizationServiceList(orgsvc.NewOrganizationServiceListParams(), nil)
	must(t, err, "OrganizationService_List")
	if n := len(orgs.Payload.Organizations); n != 1 {
		t.Fatalf("OrganizationService_List returned %d organizations, Packer needs exactly 1", n)
	}
	org := orgs.Payload.Organizations[0]
	if org.ID != s.orgID || org.Name == "" {
		t.Errorf("organization = %s, want id %s and a name", jsonOf(org), s.orgID)
	}
	if org.State == nil || *org.State != rmm.HashicorpCloudResourcemanagerOrganizationOrganizationStateACTIVE {
		t.Errorf("organization.state = %v, want ACTIVE", org.State)
	}
	requireRecent(t, "organization.created_at", org.CreatedAt)

	// ProjectService_List, scoped the way Packer scopes it.
	lp := projsvc.NewProjectServiceListParams()
	scopeType := string(rmm.HashicorpCloudResourcemanagerResourceIDResourceTypeORGANIZATION)
	lp.ScopeID, lp.ScopeType = &s.orgID, &scopeType
	projects, err := s.projects.ProjectServiceList(lp, nil)
	must(t, err, "ProjectService_List")
	var found *rmm.HashicorpCloudResourcemanagerProject
	for _, p := range projects.Payload.Projects {
		if p.ID == s.project {
			found = p
		}
		requireRecent(t, "project.created_at (Packer picks the oldest)", p.CreatedAt)
	}
	if found == nil {
		t.Fatalf("ProjectService_List does not list project %s: %s", s.project, jsonOf(projects.Payload))
	}
	if found.Parent == nil || found.Parent.ID != s.orgID {
		t.Errorf("project.parent = %s, want the organization %s", jsonOf(found.Parent), s.orgID)
	}

	// Without a scope the list is refused.
	_, err = s.projects.ProjectServiceList(projsvc.NewProjectServiceListParams(), nil)
	re := requireCode(t, err, 3, "ProjectService_List without scope")
	if _, ok := re.(*projsvc.ProjectServiceListDefault); !ok {
		t.Errorf("error type %T, want *ProjectServiceListDefault", re)
	}

	// ProjectService_Get: the Terraform provider takes the org from parent.id.
	gp := projsvc.NewProjectServiceGetParams()
	gp.ID = s.project
	got, err := s.projects.ProjectServiceGet(gp, nil)
	must(t, err, "ProjectService_Get")
	proj := got.Payload.Project
	if proj == nil || proj.ID != s.project || proj.Name == "" {
		t.Fatalf("ProjectService_Get = %s", jsonOf(got.Payload))
	}
	if proj.Parent == nil || proj.Parent.ID != s.orgID || proj.Parent.Type == nil ||
		*proj.Parent.Type != rmm.HashicorpCloudResourcemanagerResourceIDResourceTypeORGANIZATION {
		t.Errorf("project.parent = %s, want ORGANIZATION %s", jsonOf(proj.Parent), s.orgID)
	}
	if proj.State == nil || *proj.State != rmm.HashicorpCloudResourcemanagerProjectProjectStateACTIVE {
		t.Errorf("project.state = %v, want ACTIVE", proj.State)
	}

	gp = projsvc.NewProjectServiceGetParams()
	gp.ID = "00000000-0000-4000-8000-000000000000"
	_, err = s.projects.ProjectServiceGet(gp, nil)
	re = requireCode(t, err, 5, "ProjectService_Get of an unknown project")
	var d *projsvc.ProjectServiceGetDefault
	if !errors.As(re, &d) || !d.IsClientError() {
		t.Errorf("error %T is not a client-error *ProjectServiceGetDefault", re)
	}
}

// A generic error decodes as the operation's *Default response: the HTTP
// status on the response, the google.rpc.Status in Payload, and an Error()
// text in which Packer's regex finds the code.
func TestErrorDecodesAsDefault(t *testing.T) {
	s := h(t)
	p := packer.NewPackerServiceGetBucketParams()
	p.LocationOrganizationID, p.LocationProjectID, p.BucketName = s.orgID, s.project, "no-such-bucket"
	_, err := s.packer.PackerServiceGetBucket(p, nil)
	var d *packer.PackerServiceGetBucketDefault
	if !errors.As(err, &d) {
		t.Fatalf("GetBucket of a missing bucket: error %T, want *PackerServiceGetBucketDefault: %v", err, err)
	}
	if d.Code() != 404 || !d.IsCode(404) || !d.IsClientError() {
		t.Errorf("HTTP status %d, want 404 (the Terraform provider checks IsCode(404))", d.Code())
	}
	if d.Payload == nil || d.Payload.Code != 5 {
		t.Fatalf("payload = %s, want code 5", jsonOf(d.Payload))
	}
	if !strings.Contains(d.Payload.Message, "no-such-bucket") {
		t.Errorf("message %q does not name the bucket", d.Payload.Message)
	}
	if d.Payload.Details == nil || len(d.Payload.Details) != 0 {
		t.Errorf("details = %s, want []", jsonOf(d.Payload.Details))
	}
	if !strings.Contains(err.Error(), `"code":5`) || packerCode(err) != 5 {
		t.Errorf("error text %q: Packer would not find code 5", err.Error())
	}
	requireCode(t, err, 5, "GetBucket of a missing bucket")

	// An invalid query parameter is an INVALID_ARGUMENT, decoded the same way.
	lp := packer.NewPackerServiceListBucketsParams()
	lp.LocationOrganizationID, lp.LocationProjectID = s.orgID, s.project
	lp.PaginationPageSize = int64Ptr(1_000_000)
	_, err = s.packer.PackerServiceListBuckets(lp, nil)
	var ld *packer.PackerServiceListBucketsDefault
	if !errors.As(err, &ld) {
		t.Fatalf("ListBuckets with a huge page size: error %T, want *PackerServiceListBucketsDefault: %v", err, err)
	}
	requireCode(t, err, 3, "ListBuckets with page_size 1000000")

	// An operation the server does not offer: code 12, which Packer tolerates
	// only on GetEnforcedBlocksByBucket.
	rp := packer.NewPackerServiceListEnforcedBlocksParams()
	rp.LocationOrganizationID, rp.LocationProjectID = s.orgID, s.project
	if _, err = s.packer.PackerServiceListEnforcedBlocks(rp, nil); err != nil {
		requireCode(t, err, 12, "ListEnforcedBlocks (not offered)")
	}
}
