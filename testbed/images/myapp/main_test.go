package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestErrorsAreSpreadEvenly(t *testing.T) {
	h := newApp("v1.1.0", 0.5).handler()
	fails := 0
	for i := 0; i < 10; i++ {
		if code, _ := get(t, h, "/"); code == 500 {
			fails++
		}
	}
	if fails != 5 {
		t.Fatalf("rate 0.5 over 10 requests gave %d errors, want 5", fails)
	}
	_, metrics := get(t, h, "/metrics")
	for _, want := range []string{`http_requests_total{status="200"} 5`, `http_requests_total{status="500"} 5`, `myapp_build_info{version="v1.1.0"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
}

func TestHealthyAppNeverFailsAndProbesAreNotCounted(t *testing.T) {
	h := newApp("v1.0.0", 0).handler()
	for i := 0; i < 3; i++ {
		if code, body := get(t, h, "/"); code != 200 || !strings.HasPrefix(body, "myapp v1.0.0 ") {
			t.Fatalf("GET / = %d %q", code, body)
		}
	}
	get(t, h, "/healthz")
	_, metrics := get(t, h, "/metrics")
	if !strings.Contains(metrics, `http_requests_total{status="200"} 3`) || !strings.Contains(metrics, `http_requests_total{status="500"} 0`) {
		t.Fatalf("unexpected counts:\n%s", metrics)
	}
}
