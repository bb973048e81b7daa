package sim

import "time"

// V2Page is a v2 consumption page as plain encoding/json reads it, without the client's checks:
// tests read the simulator's answers through it, and the decoder's benchmark measures the
// encoding/json floor with it.
type V2Page struct {
	Projects []struct {
		ProjectID string `json:"project_id"`
		Periods   []struct {
			PeriodID    string     `json:"period_id"`
			PeriodPlan  string     `json:"period_plan"`
			PeriodStart time.Time  `json:"period_start"`
			PeriodEnd   *time.Time `json:"period_end"`
			Consumption []struct {
				Start   time.Time `json:"timeframe_start"`
				End     time.Time `json:"timeframe_end"`
				Metrics []struct {
					Name  string `json:"metric_name"`
					Value int64  `json:"value"`
				} `json:"metrics"`
			} `json:"consumption"`
		} `json:"periods"`
	} `json:"projects"`
	Pagination *struct {
		Cursor string `json:"cursor"`
	} `json:"pagination"`
}
