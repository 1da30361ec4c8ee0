package nginx

import "fmt"

// format prints st exactly as nginx (or Tengine, when HasRequestTime) does.
func format(st StubStatus) string {
	s := fmt.Sprintf("Active connections: %d \n", st.Active)
	if st.HasRequestTime {
		s += fmt.Sprintf("server accepts handled requests request_time\n %d %d %d %d\n", st.Accepted, st.Handled, st.Requests, st.RequestTimeMillis)
	} else {
		s += fmt.Sprintf("server accepts handled requests\n %d %d %d \n", st.Accepted, st.Handled, st.Requests)
	}
	return s + fmt.Sprintf("Reading: %d Writing: %d Waiting: %d \n", st.Reading, st.Writing, st.Waiting)
}
