package gunicorn

import (
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkStatsdHandleDatagram measures parsing and aggregation of the real gunicorn 20.1
// capture, one datagram per line as gunicorn sends it.
func BenchmarkStatsdHandleDatagram(b *testing.B) {
	dgs := fixtureDatagrams(b)
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env", "svc"}})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.HandleDatagram(dgs[i%len(dgs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkStatsdListenerUDP measures the listener end to end over loopback UDP: datagrams
// sent, then waited for until all are counted (loss, if any, shows as a timeout).
func BenchmarkStatsdListenerUDP(b *testing.B) {
	st := NewStatsdState(StatsdConfig{})
	l, err := NewStatsdListener("127.0.0.1:0", st)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = l.Run(ctx) }()
	<-l.Ready()
	addr, err := l.Bound()
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	line := []byte("gunicorn.request.duration:1.094|ms")
	b.ResetTimer()
	sent := 0
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(line); err == nil {
			sent++
		}
		if i%256 == 255 { // let the reader keep up rather than measure socket-buffer loss
			for st.Snapshot().Datagrams < float64(sent) {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); st.Snapshot().Datagrams < float64(sent) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
}

// BenchmarkParseStatsdLine measures the parser alone on a tagged line.
func BenchmarkParseStatsdLine(b *testing.B) {
	line := []byte("myapp.gunicorn.request.status.200:1|c|@1.0|#env:test,svc:demo")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseStatsdLine(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatsdHandleBatch measures the listener's handling of a full read: batchSize
// datagrams of the capture under one lock.
func BenchmarkStatsdHandleBatch(b *testing.B) {
	dgs := fixtureDatagrams(b)
	s := NewStatsdState(StatsdConfig{TagLabels: []string{"env", "svc"}})
	var bt batch
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt.datagrams = bt.datagrams[:0]
		for j := range batchSize {
			bt.datagrams = append(bt.datagrams, dgs[(i*batchSize+j)%len(dgs)])
		}
		s.handleBatch(bt)
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "lines/s")
}
