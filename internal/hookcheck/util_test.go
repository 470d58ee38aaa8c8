package hookcheck

import "github.com/goxl/goxl/internal/osevent"

func osRegID(v uint64) osevent.RegID { return osevent.RegID(v) }
