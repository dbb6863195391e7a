/**
 * Typed access to the generated layout of bpf/gearbox.h. Everything in TS that
 * needs an offset, a size or a constant of the kernel side gets it from here.
 */
import { ENUMS, RODATA, STRUCTS } from './layout.generated';

export { ENUMS, RODATA, STRUCTS };

export const EV = STRUCTS.gb_event.fields;
export const EV_SIZE = STRUCTS.gb_event.size;
export const TUPLE = STRUCTS.gb_tuple.fields;
export const CFG = STRUCTS.gb_config.fields;
export const OPT = STRUCTS.tcp_int_opt;

export const C = ENUMS.gb_constants;
export const EventType = ENUMS.gb_event_type;
export const Direction = ENUMS.gb_direction;
export const Role = ENUMS.gb_role;
export const Flag = ENUMS.gb_event_flag;
export const Syscall = ENUMS.gb_syscall;
export const Counter = ENUMS.gb_counter;

/** Offset of the payload head in a record that carries one. */
export const PAYLOAD_OFFSET = STRUCTS.gb_event_with_payload.fields.payload.offset;
export const PAYLOAD_MAX = C.GB_PAYLOAD_MAX;
export const PROC = STRUCTS.gb_proc_event.fields;

/** Counter names in index order, e.g. ['events_sent', 'events_lost', ...]. */
export const COUNTER_NAMES: string[] = (() => {
  const names: string[] = [];
  for (const [name, idx] of Object.entries(Counter)) {
    if (name === 'GB_CNT__MAX') continue;
    names[idx] = name.replace(/^GB_CNT_/, '').toLowerCase();
  }
  return names;
})();
