package neon

// DecodeConsumptionForTest runs the page decoder on body as if it answered q.
func DecodeConsumptionForTest(body []byte, q ConsumptionQuery, legacy bool) (*ConsumptionPage, error) {
	o, _, err := q.prepare(legacy)
	if err != nil {
		return nil, err
	}
	return decodeConsumption(body, o)
}
