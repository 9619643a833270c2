package proc

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Status
		bad        bool
	}{
		{name: "plain", line: "42 (sleep) S 7 42 7 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 123456 2265088 131 18446744073709551615",
			want: Status{PID: 42, PPID: 7, PGID: 42, State: "S", Start: "123456"}},
		{name: "spaces and parentheses in the name", line: "42 (a) b (c) Z 1 9 1 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0",
			want: Status{PID: 42, PPID: 1, PGID: 9, State: "Z", Start: "99"}},
		{name: "no name", line: "42 S 1 9", bad: true},
		{name: "short", line: "42 (x) S 1 9 1", bad: true},
	} {
		got, err := parseStat(42, tc.line)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("%s: parseStat = %+v, %v; want %+v (error %v)", tc.name, got, err, tc.want, tc.bad)
		}
	}
}

func TestStatOfThisProcess(t *testing.T) {
	st, err := Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.PPID != os.Getppid() || st.Ended() || st.Start == "" {
		t.Errorf("Stat(self) = %+v", st)
	}
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range all {
		found = found || s == st
	}
	if !found {
		t.Errorf("All() does not list this process as %+v", st)
	}
}
