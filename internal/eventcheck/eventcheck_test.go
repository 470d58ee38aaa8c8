package eventcheck

import (
	"strings"
	"testing"
)

func TestIncarnations(t *testing.T) {
	want := map[uint32]string{1: "a", 2: "b"}
	good := []Event{{1, "created"}, {2, "restored"}, {1, "shutdown"}, {1, "death"}, {2, "death"}}
	if p := Incarnations(good, want); len(p) != 0 {
		t.Fatalf("a stream that keeps the promise: %v", p)
	}
	for name, tc := range map[string]struct {
		events []Event
		find   string
	}{
		"death twice":       {[]Event{{1, "created"}, {1, "death"}, {1, "death"}, {2, "created"}, {2, "death"}}, "domain 1"},
		"death missing":     {[]Event{{1, "created"}, {1, "death"}, {2, "created"}}, "domain 2"},
		"event after death": {[]Event{{1, "created"}, {1, "death"}, {1, "paused"}, {2, "created"}, {2, "death"}}, "domain 1"},
		"no start first":    {[]Event{{1, "paused"}, {1, "created"}, {1, "death"}, {2, "created"}, {2, "death"}}, "domain 1"},
		"two starts":        {[]Event{{1, "created"}, {1, "discovered"}, {1, "death"}, {2, "created"}, {2, "death"}}, "domain 1"},
		"stranger":          {[]Event{{1, "created"}, {1, "death"}, {2, "created"}, {2, "death"}, {9, "death"}}, "domain 9"},
	} {
		p := Incarnations(tc.events, want)
		if len(p) != 1 || !strings.Contains(p[0], tc.find) {
			t.Errorf("%s: problems %v, want one naming %q", name, p, tc.find)
		}
	}
}
