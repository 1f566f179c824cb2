package tracing

import commonpb "go.opentelemetry.io/proto/otlp/common/v1"

type (
	commonKV    = commonpb.KeyValue
	stringValue = commonpb.AnyValue_StringValue
	intValue    = commonpb.AnyValue_IntValue
)
