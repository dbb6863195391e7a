/**
 * libbpf and libc through koffi. Only the calls Gearbox needs; pointers are
 * bigint (koffi 3), NULL is null, errors come from koffi.errno().
 */
import koffi from 'koffi';

export type Ptr = bigint;

export class LibbpfMissingError extends Error {}

function loadLibbpf(): ReturnType<typeof koffi.load> {
  for (const name of ['libbpf.so.1', 'libbpf.so']) {
    try {
      return koffi.load(name);
    } catch {
      /* try the next name */
    }
  }
  throw new LibbpfMissingError('libbpf is not installed (libbpf.so.1 not found): install it with `apt-get install libbpf1`');
}

let cached: ReturnType<typeof bind> | undefined;

function bind() {
  const bpf = loadLibbpf();
  const libc = koffi.load('libc.so.6');
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_link');
  const printFn = koffi.proto('int gb_libbpf_print_fn(int level, const char *fmt, void *args)');
  return {
    printFn,
    libbpf_set_print: bpf.func('void *libbpf_set_print(gb_libbpf_print_fn *fn)'),
    bpf_object__open_file: bpf.func('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
    bpf_object__load: bpf.func('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: bpf.func('void bpf_object__close(bpf_object *obj)'),
    bpf_object__next_program: bpf.func('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),
    bpf_object__next_map: bpf.func('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *prev)'),
    bpf_object__find_map_by_name: bpf.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    bpf_program__name: bpf.func('const char *bpf_program__name(bpf_program *prog)'),
    bpf_program__section_name: bpf.func('const char *bpf_program__section_name(bpf_program *prog)'),
    bpf_program__set_autoload: bpf.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    bpf_program__autoload: bpf.func('bool bpf_program__autoload(bpf_program *prog)'),
    bpf_program__attach: bpf.func('bpf_link *bpf_program__attach(bpf_program *prog)'),
    bpf_program__attach_cgroup: bpf.func('bpf_link *bpf_program__attach_cgroup(bpf_program *prog, int cgroup_fd)'),
    bpf_link__destroy: bpf.func('int bpf_link__destroy(bpf_link *link)'),
    bpf_link__fd: bpf.func('int bpf_link__fd(bpf_link *link)'),
    bpf_iter_create: bpf.func('int bpf_iter_create(int link_fd)'),
    bpf_map__name: bpf.func('const char *bpf_map__name(bpf_map *map)'),
    bpf_map__fd: bpf.func('int bpf_map__fd(bpf_map *map)'),
    bpf_map__max_entries: bpf.func('uint32_t bpf_map__max_entries(bpf_map *map)'),
    bpf_map__set_max_entries: bpf.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max)'),
    bpf_map__initial_value: bpf.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),
    bpf_map_update_elem: bpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_lookup_elem: bpf.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ uint8_t *value)'),
    bpf_obj_get_info_by_fd: bpf.func('int bpf_obj_get_info_by_fd(int fd, _Out_ uint8_t *info, _Inout_ uint32_t *info_len)'),
    libbpf_num_possible_cpus: bpf.func('int libbpf_num_possible_cpus(void)'),
    vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *args)'),
    mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
    munmap: libc.func('int munmap(void *addr, size_t len)'),
    epoll_create1: libc.func('int epoll_create1(int flags)'),
    epoll_ctl: libc.func('int epoll_ctl(int epfd, int op, int fd, uint8_t *event)'),
    epoll_wait: libc.func('int epoll_wait(int epfd, _Out_ uint8_t *events, int maxevents, int timeout)'),
    close: libc.func('int close(int fd)'),
    read: libc.func('long read(int fd, _Out_ uint8_t *buf, size_t count)'),
    setns: libc.func('int setns(int fd, int nstype)'),
    flock: libc.func('int flock(int fd, int op)'),
    sysconf: libc.func('long sysconf(int name)'),
    malloc_trim: libc.func('int malloc_trim(size_t pad)'),
    clock_gettime: libc.func('int clock_gettime(int clk, _Out_ int64_t *ts)'),
    sched_setscheduler: libc.func('int sched_setscheduler(int pid, int policy, const uint8_t *param)'),
    pthread_sigmask: libc.func('int pthread_sigmask(int how, const uint8_t *set, _Out_ uint8_t *oldset)'),
  };
}

/** The bound functions; loads libbpf on first use. */
export function libbpf(): ReturnType<typeof bind> {
  cached ??= bind();
  return cached;
}

export const MAP_FAILED = 0xffffffffffffffffn;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const EPOLLIN = 1;
export const EPOLL_CTL_ADD = 1;
export const SC_PAGESIZE = 30;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
