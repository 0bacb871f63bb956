package contract

import (
	"os"
	"strings"
	"testing"

	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	pm "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/models"
)

// getRunTask is terraform-provider-hcp's GetRunTask (internal/clients/packerv2/tfc.go):
// GetRegistryTFCRunTaskAPI with TaskType "validation".
func getRunTask(t *testing.T, s *harness) *pm.HashicorpCloudPacker20230101GetRegistryTFCRunTaskAPIResponse {
	t.Helper()
	p := packer.NewPackerServiceGetRegistryTFCRunTaskAPIParams()
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	p.TaskType = "validation"
	resp, err := s.packer.PackerServiceGetRegistryTFCRunTaskAPI(p, nil)
	must(t, err, "GetRegistryTFCRunTaskAPI")
	if resp.Payload == nil || resp.Payload.APIURL == "" || resp.Payload.HmacKey == "" {
		t.Fatalf("GetRegistryTFCRunTaskAPI: api_url or hmac_key empty: %s", jsonOf(resp.Payload))
	}
	return resp.Payload
}

// regenerateHMAC is the provider's RegenerateHMAC: the body left at its zero value ({}).
func regenerateHMAC(t *testing.T, s *harness) string {
	t.Helper()
	p := packer.NewPackerServiceRegenerateTFCRunTaskHmacKeyParams()
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	resp, err := s.packer.PackerServiceRegenerateTFCRunTaskHmacKey(p, nil)
	must(t, err, "RegenerateTFCRunTaskHmacKey")
	if resp.Payload == nil || resp.Payload.HmacKey == "" {
		t.Fatalf("RegenerateTFCRunTaskHmacKey: hmac_key empty: %s", jsonOf(resp.Payload))
	}
	return resp.Payload.HmacKey
}

// The hcp_packer_run_task resource and data source: create (GET, then PATCH with
// regenerate_hmac), refresh (GET: the new key, stable), update with regenerate_hmac again.
func TestRunTaskProviderSequence(t *testing.T) {
	s := h(t)
	first := getRunTask(t, s)
	want := "https://" + os.Getenv("HCP_API_ADDRESS") + "/packyard/runtasks/"
	if !strings.HasPrefix(first.APIURL, want) || len(first.APIURL) <= len(want) {
		t.Errorf("api_url = %q, want %s<api id>", first.APIURL, want)
	}
	if again := getRunTask(t, s); *again != *first {
		t.Errorf("a second GET changed the run task: %s, then %s", jsonOf(first), jsonOf(again))
	}

	key := regenerateHMAC(t, s)
	if key == first.HmacKey {
		t.Errorf("RegenerateTFCRunTaskHmacKey returned the old key")
	}
	after := getRunTask(t, s)
	if after.HmacKey != key || after.APIURL != first.APIURL {
		t.Errorf("GET after regenerate = %s, want api_url %s and the new key", jsonOf(after), first.APIURL)
	}
	if next := regenerateHMAC(t, s); next == key || next == first.HmacKey {
		t.Errorf("each regenerate must give a new key")
	}

	// GetRegistry names the task but never carries its key.
	rp := packer.NewPackerServiceGetRegistryParams()
	rp.LocationOrganizationID, rp.LocationProjectID = s.orgID, s.project
	reg, err := s.packer.PackerServiceGetRegistry(rp, nil)
	must(t, err, "GetRegistry")
	cfg := reg.Payload.Registry.Config.TfcRunTaskConfig
	if cfg == nil || !strings.HasSuffix(first.APIURL, "/"+cfg.APIID) || cfg.HmacKey != "" {
		t.Errorf("registry.config.tfc_run_task_config = %s, want the api id and no key", jsonOf(cfg))
	}

	// Only "validation" exists; the provider shows the message of the decoded Default.
	p := packer.NewPackerServiceGetRegistryTFCRunTaskAPIParams()
	p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
	p.TaskType = "notification"
	_, err = s.packer.PackerServiceGetRegistryTFCRunTaskAPI(p, nil)
	re := requireCode(t, err, 3, "GetRegistryTFCRunTaskAPI of an unknown task type")
	if _, ok := re.(*packer.PackerServiceGetRegistryTFCRunTaskAPIDefault); !ok {
		t.Errorf("error type %T, want *PackerServiceGetRegistryTFCRunTaskAPIDefault", re)
	}
}

func TestRunTaskConfig(t *testing.T) {
	s := h(t)
	update := func(value *pm.HashicorpCloudPacker20230101RunTaskBehaviour) pm.HashicorpCloudPacker20230101RunTaskBehaviour {
		t.Helper()
		p := packer.NewPackerServiceUpdateRunTaskConfigParams()
		p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
		p.Body = &pm.HashicorpCloudPacker20230101UpdateRunTaskConfigBody{OnUntrackedImage: value}
		resp, err := s.packer.PackerServiceUpdateRunTaskConfig(p, nil)
		must(t, err, "UpdateRunTaskConfig")
		if resp.Payload.OnUntrackedImage == nil {
			t.Fatalf("UpdateRunTaskConfig: on_untracked_image missing")
		}
		return *resp.Payload.OnUntrackedImage
	}
	get := func() pm.HashicorpCloudPacker20230101RunTaskBehaviour {
		t.Helper()
		p := packer.NewPackerServiceGetRunTaskConfigParams()
		p.LocationOrganizationID, p.LocationProjectID = s.orgID, s.project
		resp, err := s.packer.PackerServiceGetRunTaskConfig(p, nil)
		must(t, err, "GetRunTaskConfig")
		if resp.Payload.OnUntrackedImage == nil {
			t.Fatalf("GetRunTaskConfig: on_untracked_image missing")
		}
		return *resp.Payload.OnUntrackedImage
	}
	for _, v := range []pm.HashicorpCloudPacker20230101RunTaskBehaviour{
		pm.HashicorpCloudPacker20230101RunTaskBehaviourFAIL,
		pm.HashicorpCloudPacker20230101RunTaskBehaviourWARN,
	} {
		if got := update(v.Pointer()); got != v {
			t.Errorf("UpdateRunTaskConfig(%s) answered %s", v, got)
		}
		if got := get(); got != v {
			t.Errorf("GetRunTaskConfig after setting %s = %s", v, got)
		}
	}
	// The SDK omits a nil value: back to UNSET.
	if got := update(nil); got != pm.HashicorpCloudPacker20230101RunTaskBehaviourUNSET {
		t.Errorf("UpdateRunTaskConfig without a value answered %s, want UNSET", got)
	}
}
