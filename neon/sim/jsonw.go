package sim

import "strconv"

// The consumption routes write JSON by hand into pooled buffers: a page of 100 projects × 72 h ×
// 8 metrics is ~58,000 values, and reflection-based encoding would dominate serving time.

const hexDigits = "0123456789abcdef"

// appendTime appends t (unix seconds, years 1970–9999) as RFC 3339 UTC, e.g. 2026-02-04T00:00:00Z.
func appendTime(b []byte, t int64) []byte {
	days := floorDiv(t, 86400)
	secs := t - days*86400
	// Civil date from days since the epoch (proleptic Gregorian), see H. Hinnant's date algorithms.
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append2(b, m)
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, secs/3600)
	b = append(b, ':')
	b = append2(b, secs/60%60)
	b = append(b, ':')
	b = append2(b, secs%60)
	return append(b, 'Z')
}

func append2(b []byte, v int64) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

// appendUUID formats 128 random bits as a version-4, RFC 4122 variant UUID.
func appendUUID(b []byte, hi, lo uint64) []byte {
	hi = hi&^(0xf<<12) | 0x4<<12 // version nibble
	lo = lo&^(0x3<<62) | 0x2<<62 // variant bits
	for i := 0; i < 16; i++ {
		var x byte
		if i < 8 {
			x = byte(hi >> (56 - 8*i))
		} else {
			x = byte(lo >> (56 - 8*(i-8)))
		}
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

func (s *Sim) getBuf() *[]byte {
	bp := s.bufs.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

// putBuf returns a buffer to the pool unless it grew huge (a monthly page of 100 projects can).
func (s *Sim) putBuf(bp *[]byte) {
	if cap(*bp) <= 16<<20 {
		s.bufs.Put(bp)
	}
}
