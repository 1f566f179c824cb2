package wasmhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

const i32, i64 = api.ValueTypeI32, api.ValueTypeI64

type hostFunc struct {
	name   string
	params []api.ValueType
	fn     func(vm *VM, mem api.Memory, s []uint64) uint32
}

func i32s(n int) []api.ValueType {
	out := make([]api.ValueType, n)
	for i := range out {
		out[i] = i32
	}
	return out
}

// instantiateEnv registers Envoy's host calls as the "env" module. Each call
// finds its VM through the context the VM passed into the module.
func instantiateEnv(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder("env")
	for _, f := range hostFuncs() {
		f := f
		statName := "env." + f.name
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				vm := ctx.Value(vmKey{}).(*VM)
				if s := vm.stats; s != nil {
					s.enter()
					defer s.exit(statName)
				}
				// An i32 arrives in a 64-bit slot whose upper half is not
				// guaranteed to be zero.
				for i, t := range f.params {
					if t == i32 {
						stack[i] = uint64(uint32(stack[i]))
					}
				}
				stack[0] = uint64(f.fn(vm, mod.Memory(), stack))
			}), f.params, []api.ValueType{i32}).
			Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func hostFuncs() []hostFunc {
	return []hostFunc{
		{"proxy_log", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			vm.logs = append(vm.logs, LogEntry{Level: uint32(s[0]), Message: string(read(mem, s[1], s[2]))})
			return statusOK
		}},
		{"proxy_get_property", i32s(4), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			path := strings.ReplaceAll(string(read(mem, s[0], s[1])), "\x00", ".")
			v, ok := vm.property(path)
			if !ok {
				return statusNotFound
			}
			return vm.returnBytes(mem, v, s[2], s[3])
		}},
		{"proxy_set_property", i32s(4), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			path := strings.ReplaceAll(string(read(mem, s[0], s[1])), "\x00", ".")
			if vm.current == nil || vm.current.stream == nil {
				return statusBadArgument
			}
			vm.current.stream.SetProperties[path] = read(mem, s[2], s[3])
			return statusOK
		}},
		{"proxy_send_local_response", i32s(8), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			st := vm.stream()
			if st == nil {
				return statusBadArgument
			}
			headers, err := decodeMap(read(mem, s[5], s[6]))
			if err != nil {
				return statusBadArgument
			}
			st.Local = &LocalResponse{
				Status:     uint32(s[0]),
				Details:    string(read(mem, s[1], s[2])),
				Body:       read(mem, s[3], s[4]),
				Headers:    lower(headers),
				GRPCStatus: int32(uint32(s[7])),
			}
			return statusOK
		}},
		{"proxy_get_shared_data", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			key := vm.opts.VMID + "\x00" + string(read(mem, s[0], s[1]))
			h := vm.host
			h.mu.Lock()
			e, ok := h.shared[key]
			var value []byte
			var cas uint32
			if ok {
				value, cas = append([]byte(nil), e.value...), e.cas
			}
			h.mu.Unlock()
			if !ok {
				return statusNotFound
			}
			if st := vm.returnBytes(mem, value, s[2], s[3]); st != statusOK {
				return st
			}
			writeU32(mem, s[4], cas)
			return statusOK
		}},
		{"proxy_set_shared_data", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			rawKey := string(read(mem, s[0], s[1]))
			key := vm.opts.VMID + "\x00" + rawKey
			value := read(mem, s[2], s[3])
			cas := uint32(s[4])
			h := vm.host
			if h.BeforeSetSharedData != nil {
				h.BeforeSetSharedData(vm.opts.VMID, rawKey)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			// As in proxy-wasm-cpp-host: CAS 0 writes unconditionally, and a
			// missing key is created whatever the CAS. Creation therefore
			// races; filters must create their keys before they count on them.
			if e, ok := h.shared[key]; ok && cas != 0 && e.cas != cas {
				return statusCasMismatch
			}
			h.nextCas++
			h.shared[key] = &sharedEntry{value: value, cas: h.nextCas}
			return statusOK
		}},
		{"proxy_register_shared_queue", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			name := string(read(mem, s[0], s[1]))
			h := vm.host
			h.mu.Lock()
			defer h.mu.Unlock()
			for i, q := range h.queues {
				if q.vmID == vm.opts.VMID && q.name == name {
					q.owner, q.rootID = vm, vm.rootID()
					writeU32(mem, s[2], uint32(i+1))
					return statusOK
				}
			}
			h.queues = append(h.queues, &queue{vmID: vm.opts.VMID, name: name, owner: vm, rootID: vm.rootID()})
			writeU32(mem, s[2], uint32(len(h.queues)))
			return statusOK
		}},
		{"proxy_resolve_shared_queue", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			vmID := string(read(mem, s[0], s[1]))
			if vmID == "" {
				vmID = vm.opts.VMID
			}
			name := string(read(mem, s[2], s[3]))
			h := vm.host
			h.mu.Lock()
			defer h.mu.Unlock()
			for i, q := range h.queues {
				if q.vmID == vmID && q.name == name {
					writeU32(mem, s[4], uint32(i+1))
					return statusOK
				}
			}
			return statusNotFound
		}},
		{"proxy_enqueue_shared_queue", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			q := vm.host.queue(uint32(s[0]))
			if q == nil {
				return statusNotFound
			}
			vm.host.mu.Lock()
			q.items = append(q.items, read(mem, s[1], s[2]))
			vm.host.mu.Unlock()
			return statusOK
		}},
		{"proxy_dequeue_shared_queue", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			q := vm.host.queue(uint32(s[0]))
			if q == nil {
				return statusNotFound
			}
			vm.host.mu.Lock()
			if len(q.items) == 0 {
				vm.host.mu.Unlock()
				return statusEmpty
			}
			item := q.items[0]
			q.items = q.items[1:]
			vm.host.mu.Unlock()
			return vm.returnBytes(mem, item, s[1], s[2])
		}},
		{"proxy_get_header_map_value", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.headerMap(uint32(s[0]))
			if m == nil {
				return statusBadArgument
			}
			key := strings.ToLower(string(read(mem, s[1], s[2])))
			if !has(*m, key) {
				return statusNotFound
			}
			// Envoy 1.40 answers the first value of a repeated header here
			// (proxy_get_header_map_pairs has them all).
			return vm.returnBytes(mem, []byte(first(*m, key)), s[3], s[4])
		}},
		{"proxy_add_header_map_value", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.headerMap(uint32(s[0]))
			if m == nil {
				return statusBadArgument
			}
			*m = append(*m, [2]string{strings.ToLower(string(read(mem, s[1], s[2]))), string(read(mem, s[3], s[4]))})
			return statusOK
		}},
		{"proxy_replace_header_map_value", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.headerMap(uint32(s[0]))
			if m == nil {
				return statusBadArgument
			}
			key := strings.ToLower(string(read(mem, s[1], s[2])))
			*m = append(remove(*m, key), [2]string{key, string(read(mem, s[3], s[4]))})
			return statusOK
		}},
		{"proxy_remove_header_map_value", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.headerMap(uint32(s[0]))
			if m == nil {
				return statusBadArgument
			}
			*m = remove(*m, strings.ToLower(string(read(mem, s[1], s[2]))))
			return statusOK
		}},
		{"proxy_get_header_map_pairs", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.headerMap(uint32(s[0]))
			if m == nil {
				return statusBadArgument
			}
			return vm.returnBytes(mem, encodeMap(*m), s[1], s[2])
		}},
		{"proxy_set_header_map_pairs", i32s(3), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.headerMap(uint32(s[0]))
			if m == nil {
				return statusBadArgument
			}
			pairs, err := decodeMap(read(mem, s[1], s[2]))
			if err != nil {
				return statusBadArgument
			}
			*m = lower(pairs)
			return statusOK
		}},
		{"proxy_get_buffer_bytes", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			buf, ok := vm.buffer(uint32(s[0]))
			if !ok {
				return statusBadArgument
			}
			if buf == nil || len(*buf) == 0 {
				return statusNotFound
			}
			start, max := int(uint32(s[1])), int(uint32(s[2]))
			if start > len(*buf) {
				return statusBadArgument
			}
			end := len(*buf)
			if max < end-start {
				end = start + max
			}
			return vm.returnBytes(mem, (*buf)[start:end], s[3], s[4])
		}},
		{"proxy_set_buffer_bytes", i32s(5), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			buf, ok := vm.buffer(uint32(s[0]))
			if !ok || buf == nil {
				return statusBadArgument
			}
			start, length := int(uint32(s[1])), int(uint32(s[2]))
			data := read(mem, s[3], s[4])
			switch {
			case start == 0:
				// Envoy drains `length` bytes (all of them for a replace)
				// and prepends the new data.
				rest := *buf
				if length >= len(rest) {
					rest = nil
				} else {
					rest = rest[length:]
				}
				*buf = append(data, rest...)
			case start >= len(*buf):
				*buf = append(*buf, data...)
			default:
				return statusBadArgument
			}
			return statusOK
		}},
		{"proxy_continue_stream", i32s(1), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			if c := vm.conn(); c != nil {
				switch s[0] {
				case 2:
					c.DownstreamResumed++
				case 3:
					c.UpstreamResumed++
				default:
					return statusBadArgument
				}
				return statusOK
			}
			st := vm.stream()
			if st == nil {
				return statusBadArgument
			}
			switch s[0] {
			case 0:
				st.RequestResumed++
			case 1:
				st.ResponseResumed++
			default:
				return statusBadArgument
			}
			return statusOK
		}},
		{"proxy_close_stream", i32s(1), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			if c := vm.conn(); c != nil {
				switch s[0] {
				case 2:
					c.DownstreamClosed = true
				case 3:
					c.UpstreamClosed = true
				default:
					return statusBadArgument
				}
				return statusOK
			}
			st := vm.stream()
			if st == nil {
				return statusBadArgument
			}
			switch s[0] {
			case 0:
				st.RequestClosed = true
			case 1:
				st.ResponseClosed = true
			default:
				return statusBadArgument
			}
			return statusOK
		}},
		{"proxy_http_call", i32s(10), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			cluster := string(read(mem, s[0], s[1]))
			headers, err := decodeMap(read(mem, s[2], s[3]))
			if err != nil {
				return statusBadArgument
			}
			trailers, err := decodeMap(read(mem, s[6], s[7]))
			if err != nil {
				return statusBadArgument
			}
			if !vm.clusters[cluster] {
				return statusBadArgument
			}
			headers = lower(headers)
			for _, required := range []string{":method", ":path", ":authority"} {
				if get(headers, required) == "" {
					return statusBadArgument
				}
			}
			if vm.current == nil {
				return statusBadArgument
			}
			vm.calloutSeq++
			vm.callouts = append(vm.callouts, &Callout{
				plugin:   vm.current.plugin,
				ID:       vm.calloutSeq,
				Cluster:  cluster,
				Headers:  headers,
				Body:     read(mem, s[4], s[5]),
				Trailers: lower(trailers),
				Timeout:  uint32(s[8]),
			})
			writeU32(mem, s[9], vm.calloutSeq)
			return statusOK
		}},
		{"proxy_call_foreign_function", i32s(6), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			name := string(read(mem, s[0], s[1]))
			if name != "echo" {
				return statusNotFound
			}
			return vm.returnBytes(mem, read(mem, s[2], s[3]), s[4], s[5])
		}},
		{"proxy_set_tick_period_milliseconds", i32s(1), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			vm.tickPeriods[vm.rootID()] = uint32(s[0])
			return statusOK
		}},
		{"proxy_set_effective_context", i32s(1), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			ctx, ok := vm.contexts[uint32(s[0])]
			if !ok {
				return statusBadArgument
			}
			vm.current = ctx
			return statusOK
		}},
		{"proxy_done", nil, func(vm *VM, mem api.Memory, s []uint64) uint32 {
			vm.dones++
			return statusOK
		}},
		{"proxy_define_metric", i32s(4), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			if s[0] > 2 {
				return statusBadArgument
			}
			name := string(read(mem, s[1], s[2]))
			h := vm.host
			h.mu.Lock()
			defer h.mu.Unlock()
			id, ok := h.metricIDs[name]
			if !ok {
				id = uint32(len(h.metrics))
				h.metrics = append(h.metrics, &Metric{Name: name, Type: uint32(s[0])})
				h.metricIDs[name] = id
			}
			writeU32(mem, s[3], id)
			return statusOK
		}},
		{"proxy_increment_metric", []api.ValueType{i32, i64}, func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.host.metric(uint32(s[0]))
			if m == nil {
				return statusNotFound
			}
			vm.host.mu.Lock()
			m.Value = uint64(int64(m.Value) + int64(s[1]))
			vm.host.mu.Unlock()
			return statusOK
		}},
		{"proxy_record_metric", []api.ValueType{i32, i64}, func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.host.metric(uint32(s[0]))
			if m == nil {
				return statusNotFound
			}
			vm.host.mu.Lock()
			if m.Type == 2 {
				m.Values = append(m.Values, s[1])
			}
			m.Value = s[1]
			vm.host.mu.Unlock()
			return statusOK
		}},
		{"proxy_get_metric", i32s(2), func(vm *VM, mem api.Memory, s []uint64) uint32 {
			m := vm.host.metric(uint32(s[0]))
			if m == nil {
				return statusNotFound
			}
			vm.host.mu.Lock()
			v := m.Value
			vm.host.mu.Unlock()
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], v)
			if !mem.Write(uint32(s[1]), b[:]) {
				return statusBadArgument
			}
			return statusOK
		}},
	}
}

func (h *Host) queue(id uint32) *queue {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id == 0 || int(id) > len(h.queues) {
		return nil
	}
	return h.queues[id-1]
}

func (h *Host) metric(id uint32) *Metric {
	h.mu.Lock()
	defer h.mu.Unlock()
	if int(id) >= len(h.metrics) {
		return nil
	}
	return h.metrics[id]
}

func (vm *VM) stream() *Stream {
	if vm.current == nil {
		return nil
	}
	return vm.current.stream
}

func (vm *VM) conn() *Connection {
	if vm.current == nil {
		return nil
	}
	return vm.current.conn
}

func (vm *VM) rootID() uint32 {
	if vm.current == nil {
		return 0
	}
	return vm.current.plugin.ctx.id
}

func (vm *VM) property(path string) ([]byte, bool) {
	if st := vm.stream(); st != nil {
		if v, ok := st.SetProperties[path]; ok {
			return v, true
		}
		if v, ok := st.Properties[path]; ok {
			return v, true
		}
	}
	if vm.current != nil {
		if v, ok := vm.current.plugin.opts.Properties[path]; ok {
			return v, true
		}
	}
	return nil, false
}

func (vm *VM) headerMap(mapType uint32) *[][2]string {
	switch mapType {
	case 6, 7:
		if vm.activeCallout == nil {
			return nil
		}
		if mapType == 6 {
			return &vm.activeCallout.respHeaders
		}
		return &vm.activeCallout.respTrailers
	}
	st := vm.stream()
	if st == nil {
		return nil
	}
	switch mapType {
	case 0:
		return &st.RequestHeaders
	case 1:
		return &st.RequestTrailers
	case 2:
		return &st.ResponseHeaders
	case 3:
		return &st.ResponseTrailers
	}
	return nil
}

// buffer returns the buffer of a type; ok is false for types this host does
// not model.
func (vm *VM) buffer(bufferType uint32) (*[]byte, bool) {
	switch bufferType {
	case 0, 1:
		st := vm.stream()
		if st == nil {
			return nil, true
		}
		if bufferType == 0 {
			return &st.RequestBody, true
		}
		return &st.ResponseBody, true
	case 2, 3:
		c := vm.conn()
		if c == nil {
			return nil, true
		}
		if bufferType == 2 {
			return &c.Downstream, true
		}
		return &c.Upstream, true
	case 4:
		if vm.activeCallout == nil {
			return nil, true
		}
		return &vm.activeCallout.respBody, true
	case 6:
		b := vm.opts.VMConfig
		return &b, true
	case 7:
		if vm.current == nil {
			return nil, true
		}
		b := vm.current.plugin.opts.Config
		return &b, true
	}
	return nil, false
}

// returnBytes hands data to the module the way Envoy does: memory from the
// module's own allocator, then the address and size written into the
// module's out-parameters.
func (vm *VM) returnBytes(mem api.Memory, data []byte, ptrOut, sizeOut uint64) uint32 {
	ptr := uint32(vm.call("proxy_on_memory_allocate", uint64(len(data))))
	if ptr == 0 && len(data) > 0 {
		return statusBadArgument
	}
	if len(data) > 0 && !mem.Write(ptr, data) {
		return statusBadArgument
	}
	writeU32(mem, ptrOut, ptr)
	writeU32(mem, sizeOut, uint32(len(data)))
	return statusOK
}

func read(mem api.Memory, ptr, size uint64) []byte {
	if size == 0 {
		return nil
	}
	b, ok := mem.Read(uint32(ptr), uint32(size))
	if !ok {
		return nil
	}
	return bytes.Clone(b)
}

func writeU32(mem api.Memory, ptr uint64, v uint32) {
	mem.WriteUint32Le(uint32(ptr), v)
}

func remove(hs [][2]string, key string) [][2]string {
	out := hs[:0:0]
	for _, h := range hs {
		if h[0] != key {
			out = append(out, h)
		}
	}
	return out
}
