package plans_test

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/neonmeter/neonmeter/plans"
)

func TestRounding_Delta(t *testing.T) {
	tests := []struct {
		r                      plans.Rounding
		before, after, divisor uint64
		want                   int64
	}{
		{plans.RoundFloor, 0, 3599, 3600, 0},
		{plans.RoundFloor, 3599, 3600, 3600, 1},
		{plans.RoundFloor, 3600, 10800, 3600, 2},
		{plans.RoundFloor, 7300, 7100, 3600, -1}, // a revision lowered the total below 2 units
		{plans.RoundCeil, 0, 1, 3600, 1},
		{plans.RoundCeil, 1, 3600, 3600, 0},
		{plans.RoundCeil, 3600, 3601, 3600, 1},
		{plans.RoundFloor, 5, 9, 1, 4},
		{plans.RoundFloor, 5, 9, 0, 4}, // no divisor means raw units
	}
	for _, tt := range tests {
		if got := tt.r.Delta(tt.before, tt.after, tt.divisor); got != tt.want {
			t.Errorf("%s Delta(%d, %d, %d) = %d, want %d", tt.r, tt.before, tt.after, tt.divisor, got, tt.want)
		}
	}
}

func TestRounding_Pushes(t *testing.T) {
	hourly := []uint64{1000, 1000, 1000, 1000, 0, 5000, 1}
	if got, want := plans.RoundFloor.Pushes(hourly, 3600), []int64{0, 0, 0, 1, 0, 1, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("floor pushes = %v, want %v", got, want)
	}
	if got, want := plans.RoundCeil.Pushes(hourly, 3600), []int64{1, 0, 0, 1, 0, 1, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ceil pushes = %v, want %v", got, want)
	}
}

// Over any period, the units pushed hour by hour add up, at every hour, to the rounded running
// total: no unit is lost and none is counted twice, however usage is spread.
func TestRounding_NeverLosesAUnit(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for trial := range 2000 {
		divisor := []uint64{1, 3600, 744e6, 1e9, 7}[trial%5]
		r := []plans.Rounding{plans.RoundFloor, plans.RoundCeil}[trial%2]
		hourly := make([]uint64, 1+rng.IntN(744))
		for i := range hourly {
			switch rng.IntN(4) {
			case 0: // idle hour
			case 1:
				hourly[i] = rng.Uint64N(divisor + 1)
			default:
				hourly[i] = rng.Uint64N(4 * divisor)
			}
		}
		pushes := r.Pushes(hourly, divisor)
		var cum uint64
		var pushed int64
		for i, v := range hourly {
			cum += v
			pushed += pushes[i]
			if pushes[i] < 0 {
				t.Fatalf("trial %d hour %d: negative push %d for growing usage", trial, i, pushes[i])
			}
			if uint64(pushed) != r.Units(cum, divisor) {
				t.Fatalf("trial %d hour %d: pushed %d, want %s(%d/%d) = %d", trial, i, pushed, r, cum, divisor, r.Units(cum, divisor))
			}
		}
		if want := cum / divisor; r == plans.RoundFloor && uint64(pushed) != want {
			t.Fatalf("trial %d: floor total %d, want %d", trial, pushed, want)
		}
	}
}

func TestBilling_Delta(t *testing.T) {
	b := plans.Billing{Divisor: 1e9, Rounding: plans.RoundCeil}
	if got := b.Delta(0, 1); got != 1 {
		t.Fatalf("first byte of a GB = %d units, want 1 (ceil)", got)
	}
	if got := b.Units(2e9 + 1); got != 3 {
		t.Fatalf("units = %d", got)
	}
}
