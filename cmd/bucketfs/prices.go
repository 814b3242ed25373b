package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// requestPrices are dollars per 1,000 requests, by price class ("write",
// "read", "delete") or by S3 operation (GetObject), which wins.
type requestPrices map[string]float64

// AWS S3 Standard list prices (us-east-1), as AWS publishes them in 2026.
const defaultPricesNote = "AWS S3 Standard, us-east-1, 2026: write=0.005,read=0.0004,delete=0"

func defaultPrices() requestPrices {
	return requestPrices{"write": 0.005, "read": 0.0004, "delete": 0}
}

// priceClass is how AWS bills an operation: PUT, COPY, POST and LIST
// requests at one price, GET, HEAD and the rest at another; DELETE and
// aborting an upload are free.
func priceClass(op string) string {
	switch {
	case strings.HasPrefix(op, "Delete") || op == "AbortMultipartUpload":
		return "delete"
	case slices.ContainsFunc([]string{"Put", "Copy", "Create", "Upload", "Complete", "List", "Restore"},
		func(p string) bool { return strings.HasPrefix(op, p) }):
		return "write"
	}
	return "read"
}

func (p requestPrices) of(op string) float64 {
	if v, ok := p[op]; ok {
		return v
	}
	return p[priceClass(op)]
}

// withRequestPrice applies one --request-price NAME=DOLLARS to prices (a
// copy); NAME is a class or an S3 operation.
func withRequestPrice(prices requestPrices, item string) (requestPrices, error) {
	name, value, ok := strings.Cut(item, "=")
	if !ok || name == "" {
		return nil, errors.New("want NAME=DOLLARS, such as write=0.005 or GetObject=0.0004")
	}
	price, err := strconv.ParseFloat(value, 64)
	if err != nil || price < 0 || price > 1000 {
		return nil, fmt.Errorf("%q is not a number of dollars per 1,000 requests", value)
	}
	if _, class := prices[name]; !class && (name[0] < 'A' || name[0] > 'Z') {
		return nil, fmt.Errorf("%q is neither a price class (write, read, delete) nor an S3 operation (GetObject)", name)
	}
	out := maps.Clone(prices)
	out[name] = price
	return out, nil
}
