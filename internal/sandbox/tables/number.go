package tables

import (
	"math/big"
	"strings"
)

// DynamoDB numbers: up to 38 significant digits, magnitude between 1E-130
// and 9.99…E+125 (or zero). They travel as strings and are compared and
// added exactly, never through a float.
const (
	maxDigits   = 38
	maxExponent = 125  // largest decimal exponent of the leading digit
	minExponent = -130 // smallest decimal exponent of the leading digit
)

// decimal is coef × 10^exp, normalized: coef has no trailing zeros, and
// zero is {0, 0}.
type decimal struct {
	coef big.Int
	exp  int
}

// parseDecimal reads a DynamoDB number: an optional sign, digits with an
// optional point, an optional exponent. It enforces DynamoDB's precision
// and range, with AWS's messages.
func parseDecimal(s string) (decimal, error) {
	var d decimal
	orig := s
	bad := func() (decimal, error) {
		return decimal{}, validationf("The parameter cannot be converted to a numeric value: %s", orig)
	}
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	mant, expPart := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expPart = s[:i], s[i+1:]
		if expPart == "" {
			return bad()
		}
	}
	intPart, fracPart, hasPoint := strings.Cut(mant, ".")
	if intPart == "" && fracPart == "" || hasPoint && strings.Contains(fracPart, ".") {
		return bad()
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return bad()
	}
	exp := 0
	if expPart != "" {
		eneg := false
		if expPart[0] == '+' || expPart[0] == '-' {
			eneg = expPart[0] == '-'
			expPart = expPart[1:]
		}
		if expPart == "" || !allDigits(expPart) || len(expPart) > 6 {
			return bad()
		}
		for _, c := range expPart {
			exp = exp*10 + int(c-'0')
		}
		if eneg {
			exp = -exp
		}
	}
	digits := strings.TrimLeft(intPart+fracPart, "0")
	exp -= len(fracPart)
	if digits == "" {
		return decimal{}, nil
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	digits = trimmed
	if len(digits) > maxDigits {
		return decimal{}, validationf("Attempting to store more than 38 significant digits in a Number")
	}
	lead := exp + len(digits) - 1
	if lead > maxExponent {
		return decimal{}, validationf("Number overflow. Attempting to store a number with magnitude larger than supported range")
	}
	if lead < minExponent {
		return decimal{}, validationf("Number underflow. Attempting to store a number with magnitude smaller than supported range")
	}
	d.coef.SetString(digits, 10)
	if neg {
		d.coef.Neg(&d.coef)
	}
	d.exp = exp
	return d, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String renders the number in plain notation, as DynamoDB returns it:
// no exponent, no trailing zeros after the point, "0" for zero.
func (d *decimal) String() string {
	if d.coef.Sign() == 0 {
		return "0"
	}
	digits := new(big.Int).Abs(&d.coef).String()
	sign := ""
	if d.coef.Sign() < 0 {
		sign = "-"
	}
	switch {
	case d.exp >= 0:
		return sign + digits + strings.Repeat("0", d.exp)
	case -d.exp < len(digits):
		p := len(digits) + d.exp
		return sign + digits[:p] + "." + digits[p:]
	default:
		return sign + "0." + strings.Repeat("0", -d.exp-len(digits)) + digits
	}
}

// align returns the coefficients of a and b scaled to a common exponent.
func align(a, b *decimal) (x, y *big.Int, exp int) {
	x, y = new(big.Int).Set(&a.coef), new(big.Int).Set(&b.coef)
	exp = min(a.exp, b.exp)
	ten := big.NewInt(10)
	if a.exp > exp {
		x.Mul(x, new(big.Int).Exp(ten, big.NewInt(int64(a.exp-exp)), nil))
	}
	if b.exp > exp {
		y.Mul(y, new(big.Int).Exp(ten, big.NewInt(int64(b.exp-exp)), nil))
	}
	return x, y, exp
}

func (d *decimal) cmp(o *decimal) int {
	if d.coef.Sign() != o.coef.Sign() {
		return d.coef.Sign() - o.coef.Sign()
	}
	x, y, _ := align(d, o)
	return x.Cmp(y)
}

// add returns d + o (o negated when sub), checked against DynamoDB's
// precision and range.
func (d *decimal) add(o *decimal, sub bool) (string, error) {
	x, y, exp := align(d, o)
	if sub {
		x.Sub(x, y)
	} else {
		x.Add(x, y)
	}
	r := decimal{exp: exp}
	r.coef.Set(x)
	// Normalize through the parser, which also checks the limits.
	n, err := parseDecimal(r.String())
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// canonicalNumber validates a number string and returns its canonical form.
func canonicalNumber(s string) (string, error) {
	d, err := parseDecimal(s)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// compareNumbers compares two canonical numbers.
func compareNumbers(a, b string) int {
	x, errA := parseDecimal(a)
	y, errB := parseDecimal(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return x.cmp(&y)
}
