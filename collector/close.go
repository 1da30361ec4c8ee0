package collector

// Close releases what a source keeps between scrapes: the idle connection of an nginx page
// or of a uWSGI stats server read over http(s), the mapped files of a multiprocess directory,
// the connections of a Redis store. A source that keeps nothing ignores it. A scrape of the
// source still running finishes normally (the directory's reader waits for it); a later
// scrape works again and keeps its resources anew. Callers close the sources they drop: the
// one-off source of a probe, the sources a reload removed.
func Close(s Source) {
	switch s := s.(type) {
	case *nginxSource:
		s.client.Close()
	case *uwsgiSource:
		s.client.Close()
	case *Multiproc:
		s.reader.Close()
	case *MultiprocRedis:
		_ = s.store.Close()
	}
}
