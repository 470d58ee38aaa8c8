package libxl

import (
	"context"
	"log/slog"
)

// LogLevel is a xentoollog level (xentoollog_level).
type LogLevel int

// xentoollog's levels, lowest first.
const (
	LogDebug    LogLevel = 1
	LogVerbose  LogLevel = 2
	LogDetail   LogLevel = 3
	LogProgress LogLevel = 4
	LogInfo     LogLevel = 5
	LogNotice   LogLevel = 6
	LogWarn     LogLevel = 7
	LogError    LogLevel = 8
	LogCritical LogLevel = 9
)

func (l LogLevel) String() string {
	switch l {
	case LogDebug:
		return "debug"
	case LogVerbose:
		return "verbose"
	case LogDetail:
		return "detail"
	case LogProgress:
		return "progress"
	case LogInfo:
		return "info"
	case LogNotice:
		return "notice"
	case LogWarn:
		return "warn"
	case LogError:
		return "error"
	case LogCritical:
		return "critical"
	}
	return "level?"
}

// SlogLevel maps a xentoollog level onto log/slog's scale.
func (l LogLevel) SlogLevel() slog.Level {
	switch {
	case l <= LogDetail:
		return slog.LevelDebug
	case l <= LogNotice:
		return slog.LevelInfo
	case l == LogWarn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// slogSink feeds libxl's messages to a *slog.Logger.
type slogSink struct{ logger *slog.Logger }

func (s slogSink) Log(level int, errnoval int, context, msg string) {
	lvl := LogLevel(level)
	attrs := []slog.Attr{slog.String("source", "libxl"), slog.String("xtl_level", lvl.String())}
	if context != "" {
		attrs = append(attrs, slog.String("context", context))
	}
	if errnoval > 0 {
		attrs = append(attrs, slog.Int("errno", errnoval))
	}
	s.logger.LogAttrs(contextBackground, lvl.SlogLevel(), msg, attrs...)
}

var contextBackground = context.Background()
