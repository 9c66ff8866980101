// myapp: the application under test. A small HTTP server that answers with its version,
// answers a configurable share of requests with HTTP 500 (so a bad canary fails because its
// pods really answer errors), and exports its request counts for Prometheus.
//
//	GET /          200 "myapp <version> <hostname>" (or 500, see -error-rate)
//	GET /version   200 the version, never an error
//	GET /healthz   200, never an error (probes must not see the injected failures)
//	GET /metrics   Prometheus text format: http_requests_total{status="200"|"500"} and
//	               myapp_build_info{version="..."} 1
//
// Configuration: flags, or the environment (what an image or a pod template sets):
//
//	-listen      MYAPP_LISTEN       default :8080
//	-version     MYAPP_VERSION      default "dev"
//	-error-rate  MYAPP_ERROR_RATE   share of / requests answered 500, 0..1 (default 0)
//
// Errors are spread evenly, not at random: with rate r, after n requests exactly floor(n*r)
// have failed, so a canary analysis sees the configured success rate from its first window.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type app struct {
	version   string
	errorRate float64
	hostname  string

	mu       sync.Mutex
	served   uint64            // requests to / so far (drives the even error spread)
	byStatus map[string]uint64 // status code -> count, what /metrics exports
}

func newApp(version string, errorRate float64) *app {
	host, _ := os.Hostname()
	// both series exist from the start, so rate() of either is defined from the first scrape
	return &app{version: version, errorRate: errorRate, hostname: host,
		byStatus: map[string]uint64{"200": 0, "500": 0}}
}

// fail reports whether the next request to / is one of the injected errors.
func (a *app) fail() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.served++
	n := float64(a.served)
	return uint64(n*a.errorRate) > uint64((n-1)*a.errorRate)
}

func (a *app) count(status int) {
	a.mu.Lock()
	a.byStatus[strconv.Itoa(status)]++
	a.mu.Unlock()
}

func (a *app) root(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		a.count(http.StatusNotFound)
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-App-Version", a.version)
	if a.fail() {
		a.count(http.StatusInternalServerError)
		http.Error(w, fmt.Sprintf("myapp %s %s: injected error", a.version, a.hostname), http.StatusInternalServerError)
		return
	}
	a.count(http.StatusOK)
	fmt.Fprintf(w, "myapp %s %s\n", a.version, a.hostname)
}

func (a *app) metrics(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	statuses := make([]string, 0, len(a.byStatus))
	for s := range a.byStatus {
		statuses = append(statuses, s)
	}
	sort.Strings(statuses)
	var b strings.Builder
	b.WriteString("# HELP http_requests_total HTTP requests to / by status code.\n# TYPE http_requests_total counter\n")
	for _, s := range statuses {
		fmt.Fprintf(&b, "http_requests_total{status=%q} %d\n", s, a.byStatus[s])
	}
	a.mu.Unlock()
	fmt.Fprintf(&b, "# HELP myapp_build_info The running version.\n# TYPE myapp_build_info gauge\nmyapp_build_info{version=%q} 1\n", a.version)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.root)
	mux.HandleFunc("/metrics", a.metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, a.version) })
	return mux
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func main() {
	listen := flag.String("listen", env("MYAPP_LISTEN", ":8080"), "address to serve on")
	version := flag.String("version", env("MYAPP_VERSION", "dev"), "version to report")
	rateText := flag.String("error-rate", env("MYAPP_ERROR_RATE", "0"), "share of / requests answered 500 (0..1)")
	flag.Parse()
	rate, err := strconv.ParseFloat(*rateText, 64)
	if err != nil || rate < 0 || rate > 1 {
		log.Fatalf("error rate %q: want a number from 0 to 1", *rateText)
	}
	a := newApp(*version, rate)
	srv := &http.Server{Addr: *listen, Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop // Kubernetes sends SIGTERM: finish the requests in flight, then exit
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("myapp %s listening on %s, error rate %g", a.version, *listen, rate)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
