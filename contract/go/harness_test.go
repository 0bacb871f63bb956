package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	packer "github.com/hashicorp/hcp-sdk-go/clients/cloud-packer-service/stable/2023-01-01/client/packer_service"
	orgsvc "github.com/hashicorp/hcp-sdk-go/clients/cloud-resource-manager/stable/2019-12-10/client/organization_service"
	projsvc "github.com/hashicorp/hcp-sdk-go/clients/cloud-resource-manager/stable/2019-12-10/client/project_service"
	shared "github.com/hashicorp/hcp-sdk-go/clients/cloud-shared/v1/models"
	"github.com/hashicorp/hcp-sdk-go/config"
	"github.com/hashicorp/hcp-sdk-go/httpclient"
)

// sourceChannel is what Packer 1.16 puts in X-HCP-Source-Channel.
const sourceChannel = "packer/1.16.0"

// envKeys are the variables `packyard env --format json` prints.
var envKeys = []string{
	"HCP_API_ADDRESS", "HCP_API_TLS", "HCP_AUTH_URL", "HCP_AUTH_TLS",
	"HCP_CLIENT_ID", "HCP_CLIENT_SECRET", "HCP_ORGANIZATION_ID", "HCP_PROJECT_ID",
}

// harness is the server and the SDK clients shared by every test.
type harness struct {
	packer   packer.ClientService
	orgs     orgsvc.ClientService
	projects projsvc.ClientService
	orgID    string
	project  string
	clientID string
	home     string
}

var (
	suite      *harness
	skipReason string
	nameSeq    atomic.Int64
)

// h returns the shared harness, skipping the test when there is no server to test.
func h(t *testing.T) *harness {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	return suite
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin := os.Getenv("PACKYARD_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", ".venv", "bin", "packyard")
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "contract: packyard binary not found at %s (CI=true, refusing to skip): %v\n", bin, err)
			return 1
		}
		skipReason = fmt.Sprintf("packyard binary not found at %s: set PACKYARD_BIN or run ./dev test", bin)
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "packyard-contract-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "contract:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	srv, err := startServer(bin, tmp)
	if srv != nil {
		defer srv.stop()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "contract: %v\n%s", err, srv.logTail())
		return 1
	}
	suite, err = connect(bin, filepath.Join(tmp, "data"), filepath.Join(tmp, "home"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "contract: %v\n%s", err, srv.logTail())
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "contract: server log tail:\n%s", srv.logTail())
	}
	return code
}

// server is a `packyard serve` subprocess.
type server struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startServer(bin, tmp string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(tmp, "server.log"))
	if err != nil {
		return nil, err
	}
	data := filepath.Join(tmp, "data")
	cmd := exec.Command(bin, "serve", "--data-dir", data,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--log-level", "warning")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Keep the caller's PACKYARD_* settings from leaking in (e.g. a database URL).
	cmd.Env = filteredEnv("PACKYARD_")
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{cmd: cmd, log: logFile, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()

	// TLS is on with a self-signed certificate; any HTTP answer means it is up.
	probe := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // self-signed test server
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/resource-manager/2019-12-10/organizations", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			return s, fmt.Errorf("packyard serve exited before answering: %v", err)
		default:
		}
		resp, err := probe.Get(url)
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(150 * time.Millisecond)
	}
	return s, fmt.Errorf("packyard serve did not answer on port %d within 60s", port)
}

func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	select {
	case err := <-s.done:
		s.done <- err
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.log.Close()
}

func (s *server) logTail() string {
	if s == nil || s.log == nil {
		return ""
	}
	raw, err := os.ReadFile(s.log.Name())
	if err != nil {
		return ""
	}
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

func filteredEnv(prefixes ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// connect reads the env block, exports it like a user would and builds the
// SDK clients exactly the way Packer does (config from the environment only).
func connect(bin, data, home string) (*harness, error) {
	out, err := exec.Command(bin, "env", "--data-dir", data, "--format", "json").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("packyard env: %v: %s", err, exit.Stderr)
		}
		return nil, fmt.Errorf("packyard env: %w", err)
	}
	var block map[string]*string
	if err := json.Unmarshal(out, &block); err != nil {
		return nil, fmt.Errorf("packyard env printed invalid JSON: %w\n%s", err, out)
	}
	// Start from a clean slate: no HCP_* setting of the developer's may leak in.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HCP_") {
			os.Unsetenv(strings.SplitN(kv, "=", 2)[0])
		}
	}
	for _, key := range envKeys {
		value, ok := block[key]
		if !ok {
			return nil, fmt.Errorf("packyard env did not print %s", key)
		}
		if value == nil {
			os.Unsetenv(key)
		} else {
			os.Setenv(key, *value)
		}
	}
	// The SDK caches tokens in $HOME/.config/hcp, keyed by client id only.
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	os.Setenv("HOME", home)

	rt, err := newRuntime()
	if err != nil {
		return nil, err
	}
	return &harness{
		packer:   packer.New(rt, nil),
		orgs:     orgsvc.New(rt, nil),
		projects: projsvc.New(rt, nil),
		orgID:    os.Getenv("HCP_ORGANIZATION_ID"),
		project:  os.Getenv("HCP_PROJECT_ID"),
		clientID: os.Getenv("HCP_CLIENT_ID"),
		home:     home,
	}, nil
}

// newRuntime builds the go-openapi runtime from the environment, plus options.
func newRuntime(extra ...config.HCPConfigOption) (*httptransport.Runtime, error) {
	opts := append([]config.HCPConfigOption{config.FromEnv()}, extra...)
	hcpConfig, err := config.NewHCPConfig(opts...)
	if err != nil {
		return nil, fmt.Errorf("config.NewHCPConfig(FromEnv): %w", err)
	}
	rt, err := httpclient.New(httpclient.Config{HCPConfig: hcpConfig, SourceChannel: sourceChannel})
	if err != nil {
		return nil, fmt.Errorf("httpclient.New: %w", err)
	}
	return rt, nil
}

// ---------------------------------------------------------------------------
// Errors, the way Packer and the Terraform provider read them.

// errCodeRegex is Packer's (internal/hcp/api/errors.go): it finds the gRPC
// code in the text of the SDK's error.
var errCodeRegex = regexp.MustCompilePOSIX(`[Cc]ode"?:([0-9]+)`)

// packerCode is the code Packer would see in err, or -1.
func packerCode(err error) int {
	if err == nil {
		return -1
	}
	m := errCodeRegex.FindStringSubmatch(err.Error())
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// rpcError is what every generated *Default response implements.
type rpcError interface {
	error
	Code() int
	IsSuccess() bool
	GetPayload() *shared.GoogleRPCStatus
}

// httpStatusFor is the grpc-gateway mapping the reference documents.
var httpStatusFor = map[int]int{
	3: 400, 5: 404, 6: 409, 7: 403, 9: 400, 10: 409, 12: 501, 13: 500, 16: 401,
}

// requireCode asserts err is a decoded google.rpc.Status error with gRPC code
// want, the matching HTTP status, and text in which Packer's regex finds want.
func requireCode(t *testing.T, err error, want int, what string) rpcError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: expected an error with code %d, got success", what, want)
	}
	var re rpcError
	if !errors.As(err, &re) {
		t.Fatalf("%s: error is not a decoded *Default response (%T): %v", what, err, err)
	}
	if re.IsSuccess() {
		t.Fatalf("%s: a 2xx other than 200 came back: %v", what, err)
	}
	p := re.GetPayload()
	if p == nil {
		t.Fatalf("%s: error payload not decoded: %v", what, err)
	}
	if int(p.Code) != want {
		t.Fatalf("%s: payload code = %d, want %d (%v)", what, p.Code, want, err)
	}
	if got := packerCode(err); got != want {
		t.Fatalf("%s: Packer's regex finds code %d in %q, want %d", what, got, err.Error(), want)
	}
	if status, ok := httpStatusFor[want]; ok && re.Code() != status {
		t.Fatalf("%s: HTTP status %d, want %d for code %d (%v)", what, re.Code(), status, want, err)
	}
	if p.Message == "" {
		t.Errorf("%s: error has an empty message: %v", what, err)
	}
	if p.Details == nil {
		t.Errorf("%s: error details should be [] (got null/absent): %v", what, err)
	}
	return re
}

// skipIfUnimplemented skips a test of an operation still being built: only a
// code 12 answer skips; anything else is asserted by the caller.
func skipIfUnimplemented(t *testing.T, err error, op string) {
	t.Helper()
	var re rpcError
	if err != nil && errors.As(err, &re) && re.GetPayload() != nil && re.GetPayload().Code == 12 {
		t.Skipf("%s is not implemented by this server yet (code 12): %s", op, re.GetPayload().Message)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// ---------------------------------------------------------------------------
// Small utilities.

// uniq returns a bucket-safe name (3-36 chars of [a-z0-9-]) unique in this run.
func uniq(prefix string) string {
	n := nameSeq.Add(1)
	name := fmt.Sprintf("%s-%d", prefix, n)
	if len(name) > 36 {
		name = name[len(name)-36:]
	}
	return name
}

// newUUID returns a random RFC 4122 v4 UUID, like Packer's run UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ctx is a per-call context bounded well below the suite's budget.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func jsonOf(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(buf.String())
}
