// Command fake-ec2 serves a simulated EC2 fleet over the EC2 Query API (the
// same fake the tests use, internal/cloud/fake) so the controller can be run
// by hand without AWS:
//
//	go run ./hack/fake-ec2 -fleet web=20,db:masterful=3 -addr 127.0.0.1:8787 &
//	AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=fake AWS_SECRET_ACCESS_KEY=fake \
//	  aerostat controller --standalone --once --ec2-endpoint http://127.0.0.1:8787
//
// Besides the EC2 API on "/", it answers a few plain HTTP calls to change
// the fleet and its faults while the controller runs:
//
//	curl -XPOST '127.0.0.1:8787/fake/launch?service=web&n=3'
//	curl -XPOST '127.0.0.1:8787/fake/terminate?service=web&n=5'
//	curl -XPOST '127.0.0.1:8787/fake/faults?throttle-next=2&fail-on-page=2&latency=1s'
//	curl -XPOST '127.0.0.1:8787/fake/faults?reset=1'
//	curl '127.0.0.1:8787/fake/instances'
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Tag keys of 1.x-style fleets (controllers.TagService and friends; not
// imported to keep this program free of controller-runtime).
const (
	tagService     = "aerostat:service"
	tagServiceType = "aerostat:service-type"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fake-ec2:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("fake-ec2", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8787", "listen address")
	fleetSpec := fs.String("fleet", "web=20", "instances to launch: service[:scheme]=count, comma separated")
	instances := fs.Int("instances", -1, "instance count of a single service web (shorthand for -fleet web=N)")
	latency := fs.Duration("latency", 0, "delay every call by this much")
	throttle := fs.Float64("throttle-fraction", 0, "throttle each call (RequestLimitExceeded) with this probability")
	failPage := fs.Int("fail-on-page", 0, "fail every request for page k (1-based) of a listing with HTTP 500")
	seed := fs.Uint64("seed", 1, "seed of -throttle-fraction")
	sqsQueue := fs.String("sqs-queue", "", "also serve a fake SQS queue of this name on the same address, fed with the fleet's state-change notifications (controller --sqs-queue-url http://ADDR/123456789012/NAME --sqs-endpoint http://ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *instances >= 0 {
		*fleetSpec = fmt.Sprintf("web=%d", *instances)
	}
	groups, err := parseFleet(*fleetSpec)
	if err != nil {
		return err
	}
	fleet := fake.NewFleet(clock.RealClock{})
	total := 0
	for _, g := range groups {
		fleet.Launch(g.n, g.tags())
		total += g.n
	}
	api := fake.NewAPI(fleet)
	api.SetLatency(*latency)
	if *throttle > 0 {
		api.ThrottleFraction(*throttle, *seed)
	}
	api.FailOnPage(*failPage)

	mux := http.NewServeMux()
	var ec2Handler http.Handler = logged(api)
	if *sqsQueue != "" {
		q := fake.NewSQS(clock.RealClock{}, "http://"+*addr, *sqsQueue)
		q.Follow(fleet)
		ec2 := ec2Handler
		ec2Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fake.IsSQSRequest(r) {
				q.ServeHTTP(w, r)
				return
			}
			ec2.ServeHTTP(w, r)
		})
		log.Printf("fake SQS queue %s", q.QueueURL())
	}
	mux.Handle("/", ec2Handler)
	mux.Handle("/fake/", control{fleet: fleet, api: api})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
	}()
	log.Printf("fake EC2 Query API on http://%s with %d instances (%s)", *addr, total, *fleetSpec)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type group struct {
	service, scheme string
	n               int
}

func (g group) tags() map[string]string {
	t := map[string]string{tagService: g.service}
	if g.scheme != "" {
		t[tagServiceType] = g.scheme
	}
	return t
}

// parseFleet reads "web=20,db:masterful=3".
func parseFleet(spec string) ([]group, error) {
	var out []group
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, count, ok := strings.Cut(item, "=")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("-fleet item %q: want service[:scheme]=count", item)
		}
		g := group{n: n}
		g.service, g.scheme, _ = strings.Cut(name, ":")
		if err := naming.ValidateLabel("-fleet service", g.service); err != nil {
			return nil, err
		}
		if g.scheme != "" {
			if _, err := naming.ParseScheme(g.scheme); err != nil {
				return nil, fmt.Errorf("-fleet item %q: %w", item, err)
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// logged logs one line per EC2 call.
func logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(rec, r)
		log.Printf("%s %d %s", r.PostFormValue("Action"), rec.status, time.Since(start).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// control changes the fleet and the faults over plain HTTP.
type control struct {
	fleet *fake.Fleet
	api   *fake.API
}

func (c control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/fake/instances" {
		for _, in := range c.fleet.Instances() {
			fmt.Fprintf(w, "%s\t%s\t%-13s\t%s\t%s\n", in.ID, in.PrivateIP, in.State, in.Tags[tagService], in.LaunchTime.Format(time.RFC3339))
		}
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	var err error
	switch r.URL.Path {
	case "/fake/launch":
		err = c.launch(w, q.Get("service"), q.Get("scheme"), q.Get("n"))
	case "/fake/terminate":
		err = c.terminate(w, q.Get("service"), q.Get("n"))
	case "/fake/faults":
		err = c.faults(w, q)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func count(v string) (int, error) {
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("n %q: want a positive count", v)
	}
	return n, nil
}

func (c control) launch(w http.ResponseWriter, service, scheme, n string) error {
	k, err := count(n)
	if err != nil {
		return err
	}
	g := group{service: service, scheme: scheme, n: k}
	if err := naming.ValidateLabel("service", service); err != nil {
		return err
	}
	for _, id := range c.fleet.Launch(k, g.tags()) {
		fmt.Fprintln(w, id)
	}
	log.Printf("launched %d instances of %s", k, service)
	return nil
}

// terminate terminates the n oldest running instances of service.
func (c control) terminate(w http.ResponseWriter, service, n string) error {
	k, err := count(n)
	if err != nil {
		return err
	}
	var ids []string
	for _, in := range c.fleet.Instances() {
		if len(ids) < k && in.State == naming.StateRunning && (service == "" || in.Tags[tagService] == service) {
			ids = append(ids, in.ID)
		}
	}
	if err := c.fleet.Terminate(ids...); err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Fprintln(w, id)
	}
	log.Printf("terminated %d instances of %q", len(ids), service)
	return nil
}

func (c control) faults(w http.ResponseWriter, q map[string][]string) error {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if get("reset") != "" {
		c.api.ResetFaults()
	}
	if v := get("throttle-next"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("throttle-next %q: %w", v, err)
		}
		c.api.ThrottleNext(n)
	}
	if v := get("fail-next"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("fail-next %q: %w", v, err)
		}
		c.api.FailNext(n, http.StatusServiceUnavailable)
	}
	if v := get("fail-on-page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("fail-on-page %q: %w", v, err)
		}
		c.api.FailOnPage(n)
	}
	if v := get("latency"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("latency %q: %w", v, err)
		}
		c.api.SetLatency(d)
	}
	fmt.Fprintln(w, "ok")
	log.Printf("faults set: %v", q)
	return nil
}
