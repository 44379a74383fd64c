package secagg

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Shamir secret sharing of 32-byte secrets over the prime field of
// p = 2^256 + 297, the least prime above 2^256, so every 32-byte
// secret is a field element. A share is the polynomial's value at the
// shareholder's point (its index in the participants, from 1), written
// big-endian in shareSize bytes.

const shareSize = 33

var fieldPrime = func() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 256)
	return p.Add(p, big.NewInt(297))
}()

// split shares secret (32 bytes) with threshold t at the points xs
// (distinct, non-zero), one share per point.
func split(secret []byte, xs []int64, t int, rnd io.Reader) ([][]byte, error) {
	if len(secret) != 32 {
		return nil, errors.New("secagg: a shared secret is 32 bytes")
	}
	if t < 1 || t > len(xs) {
		return nil, fmt.Errorf("secagg: threshold %d for %d shares", t, len(xs))
	}
	coef := make([]*big.Int, t)
	coef[0] = new(big.Int).SetBytes(secret)
	for i := 1; i < t; i++ {
		c, err := rand.Int(rnd, fieldPrime)
		if err != nil {
			return nil, fmt.Errorf("secagg: randomness: %w", err)
		}
		coef[i] = c
	}
	out := make([][]byte, len(xs))
	for i, x := range xs {
		bx := big.NewInt(x)
		y := new(big.Int)
		for j := t - 1; j >= 0; j-- { // Horner
			y.Mul(y, bx)
			y.Add(y, coef[j])
			y.Mod(y, fieldPrime)
		}
		out[i] = y.FillBytes(make([]byte, shareSize))
	}
	return out, nil
}

// parseShare reads a share's value, refusing one that is not a field
// element.
func parseShare(b []byte) (*big.Int, error) {
	if len(b) != shareSize {
		return nil, fmt.Errorf("a share is %d bytes, not %d", shareSize, len(b))
	}
	y := new(big.Int).SetBytes(b)
	if y.Cmp(fieldPrime) >= 0 {
		return nil, errors.New("a share is not a field element")
	}
	return y, nil
}

// combine recovers the secret from shares ys at points xs (distinct,
// non-zero): Lagrange interpolation at zero. A result that is not a
// 32-byte value means the shares are not of one secret.
func combine(xs []int64, ys [][]byte) ([]byte, error) {
	if len(xs) != len(ys) || len(xs) == 0 {
		return nil, errors.New("secagg: no shares to combine")
	}
	vals := make([]*big.Int, len(ys))
	for i, b := range ys {
		y, err := parseShare(b)
		if err != nil {
			return nil, fmt.Errorf("secagg: %w", err)
		}
		vals[i] = y
	}
	secret := new(big.Int)
	num, den, t := new(big.Int), new(big.Int), new(big.Int)
	for i := range xs {
		num.SetInt64(1)
		den.SetInt64(1)
		for j := range xs {
			if j == i {
				continue
			}
			num.Mul(num, t.SetInt64(xs[j]))
			num.Mod(num, fieldPrime)
			den.Mul(den, t.SetInt64(xs[j]-xs[i]))
			den.Mod(den, fieldPrime)
		}
		if den.Sign() == 0 || den.ModInverse(den, fieldPrime) == nil {
			return nil, errors.New("secagg: shares at the same point")
		}
		num.Mul(num, den)
		num.Mul(num, vals[i])
		secret.Add(secret, num)
		secret.Mod(secret, fieldPrime)
	}
	if secret.BitLen() > 256 {
		return nil, errors.New("secagg: the shares are not of one secret")
	}
	return secret.FillBytes(make([]byte, 32)), nil
}
