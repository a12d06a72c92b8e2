package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// API serves a Fleet over the EC2 Query protocol (form-encoded POST,
// Action=DescribeInstances|CreateTags, XML responses and EC2's XML error
// body). Its embedded Faults apply to every call; they are separate from
// the Fleet's own in-process Faults.
type API struct {
	Faults

	fleet *Fleet
	reqID atomic.Uint64

	mu    sync.Mutex
	calls map[string]int
}

// NewAPI returns the EC2 Query API handler for fleet.
func NewAPI(fleet *Fleet) *API {
	return &API{fleet: fleet, calls: map[string]int{}}
}

// Server is an API on an httptest server; point the SDK's BaseEndpoint at URL.
type Server struct {
	*API
	URL string
	srv *httptest.Server
}

// NewServer starts an API for fleet on a local port.
func NewServer(fleet *Fleet) *Server {
	api := NewAPI(fleet)
	srv := httptest.NewServer(api)
	return &Server{API: api, URL: srv.URL, srv: srv}
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Calls is the number of requests for action (e.g. "DescribeInstances")
// since the last Reset, failed and throttled ones included.
func (a *API) Calls(action string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[action]
}

// TotalCalls is the number of requests of any action since the last Reset.
func (a *API) TotalCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.calls {
		n += c
	}
	return n
}

// Reset turns the API's faults off and zeroes its counters.
func (a *API) Reset() {
	a.ResetFaults()
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.calls)
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		a.writeError(w, http.StatusMethodNotAllowed, "InvalidAction", "only POST is supported")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		a.writeError(w, http.StatusBadRequest, "MalformedQueryString", err.Error())
		return
	}
	action := r.PostForm.Get("Action")
	a.mu.Lock()
	a.calls[action]++
	a.mu.Unlock()

	page := 0
	var token int
	if action == "DescribeInstances" {
		var err error
		if token, err = decodeToken(r.PostForm.Get("NextToken")); err != nil {
			a.writeError(w, http.StatusBadRequest, "InvalidParameterValue", "Invalid NextToken")
			return
		}
		page = token/pageSizeOf(r.PostForm) + 1
	}
	fault, latency := a.next(page)
	if err := sleep(r.Context(), latency); err != nil {
		return
	}
	if fault.Code != "" {
		a.writeError(w, fault.Status, fault.Code, fault.Message)
		return
	}
	switch action {
	case "DescribeInstances":
		a.describeInstances(w, r.PostForm, token, fault.Empty)
	case "CreateTags":
		a.createTags(w, r)
	default:
		a.writeError(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action))
	}
}

// pageSizeOf is the MaxResults of a request, or 0 (everything in one page).
func pageSizeOf(form url.Values) int {
	n, err := strconv.Atoi(form.Get("MaxResults"))
	if err != nil || n <= 0 {
		return 1 << 30
	}
	return n
}

func (a *API) describeInstances(w http.ResponseWriter, form url.Values, offset int, empty bool) {
	filters := parseFilters(form)
	if ids := listParam(form, "InstanceId"); len(ids) > 0 {
		if form.Get("MaxResults") != "" {
			a.writeError(w, http.StatusBadRequest, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
			return
		}
		filters = append(filters, cloud.Filter{Name: "instance-id", Values: ids})
		for _, id := range ids {
			if _, ok := a.fleet.Instance(id); !ok {
				a.writeError(w, http.StatusBadRequest, CodeNotFound, fmt.Sprintf("The instance ID '%s' does not exist", id))
				return
			}
		}
	}
	if err := checkFilters(filters); err != nil {
		a.writeError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	limit := 0
	if s := form.Get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 5 || n > 1000 {
			a.writeError(w, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", s))
			return
		}
		limit = n
	}
	resp := describeInstancesResponse{Xmlns: ec2Namespace, RequestID: a.requestID()}
	if !empty {
		items, next := a.fleet.pageEntries(filters, offset, limit)
		if next >= 0 {
			resp.NextToken = encodeToken(next)
		}
		resp.Reservations = groupReservations(items)
	}
	writeXML(w, http.StatusOK, resp)
}

func (a *API) createTags(w http.ResponseWriter, r *http.Request) {
	ids := listParam(r.PostForm, "ResourceId")
	tags := map[string]string{}
	for i := 1; ; i++ {
		k := r.PostForm.Get(fmt.Sprintf("Tag.%d.Key", i))
		if k == "" {
			break
		}
		tags[k] = r.PostForm.Get(fmt.Sprintf("Tag.%d.Value", i))
	}
	if len(ids) == 0 || len(tags) == 0 {
		a.writeError(w, http.StatusBadRequest, "MissingParameter", "The request must contain the parameters ResourceId and Tag")
		return
	}
	if err := a.fleet.Tag(r.Context(), ids, tags); err != nil {
		a.writeError(w, http.StatusBadRequest, CodeNotFound, err.Error())
		return
	}
	writeXML(w, http.StatusOK, createTagsResponse{Xmlns: ec2Namespace, RequestID: a.requestID(), Return: true})
}

// parseFilters reads Filter.N.Name / Filter.N.Value.M.
func parseFilters(form url.Values) []cloud.Filter {
	byN := map[int]*cloud.Filter{}
	for key, vals := range form {
		rest, ok := strings.CutPrefix(key, "Filter.")
		if !ok || len(vals) == 0 {
			continue
		}
		nStr, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(nStr)
		if err != nil {
			continue
		}
		f := byN[n]
		if f == nil {
			f = &cloud.Filter{}
			byN[n] = f
		}
		if field == "Name" {
			f.Name = vals[0]
		}
	}
	var ns []int
	for n, f := range byN {
		f.Values = listParam(form, fmt.Sprintf("Filter.%d.Value", n))
		ns = append(ns, n)
	}
	sort.Ints(ns)
	out := make([]cloud.Filter, 0, len(ns))
	for _, n := range ns {
		out = append(out, *byN[n])
	}
	return out
}

// listParam reads prefix.1, prefix.2, … until the first gap.
func listParam(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.%d", prefix, i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

func encodeToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodeToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(string(b), "offset:")
	if !ok {
		return 0, errors.New("bad token")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("bad token")
	}
	return n, nil
}

func (a *API) requestID() string {
	n := a.reqID.Add(1)
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", n)
}

func (a *API) writeError(w http.ResponseWriter, status int, code, msg string) {
	writeXML(w, status, errorResponse{Code: code, Message: msg, RequestID: a.requestID()})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func groupReservations(items []entry) []reservationXML {
	var out []reservationXML
	for _, e := range items {
		if len(out) == 0 || out[len(out)-1].ReservationID != e.reservation {
			out = append(out, reservationXML{ReservationID: e.reservation, OwnerID: "123456789012"})
		}
		r := &out[len(out)-1]
		r.Instances = append(r.Instances, instanceXMLOf(e.Instance))
	}
	return out
}

func instanceXMLOf(in naming.Instance) instanceXML {
	x := instanceXML{
		InstanceID: in.ID,
		State:      stateXML{Code: stateCodes[in.State], Name: string(in.State)},
		LaunchTime: in.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	// A terminated instance has lost its network interface and address.
	if in.State != naming.StateTerminated {
		x.PrivateIP = in.PrivateIP
	}
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, tagXML{Key: k, Value: in.Tags[k]})
	}
	return x
}

type describeInstancesResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	Xmlns        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []reservationXML `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type instanceXML struct {
	InstanceID string   `xml:"instanceId"`
	State      stateXML `xml:"instanceState"`
	PrivateIP  string   `xml:"privateIpAddress,omitempty"`
	LaunchTime string   `xml:"launchTime"`
	Tags       []tagXML `xml:"tagSet>item"`
}

type stateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type createTagsResponse struct {
	XMLName   xml.Name `xml:"CreateTagsResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Return    bool     `xml:"return"`
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Code      string   `xml:"Errors>Error>Code"`
	Message   string   `xml:"Errors>Error>Message"`
	RequestID string   `xml:"RequestID"`
}
