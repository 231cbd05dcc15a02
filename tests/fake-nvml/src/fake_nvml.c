/*
 * A stand-in for libnvidia-ml.so, for tests only.
 *
 * It exports the NVML entry points gpu-agent's inventory reaches through nvml-wrapper and
 * answers them from a text file describing the "hardware": `fake-nvml.conf` in the same
 * directory as this library file. Every call re-reads that file, so a test changes the
 * hardware (memory in use, a driver that stops loading) by rewriting it.
 *
 * Why a file beside the library and not an environment variable: tests run in parallel
 * threads of one process and environment variables are process-global. Each test copies
 * this library into its own directory; the dynamic loader treats every copy as a distinct
 * object with its own globals, so tests never see each other's hardware.
 *
 * File format (one entry per line, '#' starts a comment):
 *   init_error <nvmlReturn_t>        nvmlInit* fails with this code (9 = driver not loaded)
 *   driver_version <string>
 *   cuda_driver_version <int>        e.g. 12040 for CUDA 12.4
 *   gpu <total MiB> <used MiB> <cc major> <cc minor> <mig: unsupported|disabled|enabled> <uuid> <name...>
 *   lost <index>                     queries on that GPU fail with NVML_ERROR_GPU_IS_LOST
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

#define MAX_GPUS 64
#define NAME_LEN 96
#define UUID_LEN 96
#define VERSION_LEN 80
#define MIB 1048576ULL

enum mig_mode { MIG_UNSUPPORTED, MIG_DISABLED, MIG_ENABLED };

struct nvmlDevice_st {
    char name[NAME_LEN];
    char uuid[UUID_LEN];
    unsigned long long total_mib;
    unsigned long long used_mib;
    int cc_major;
    int cc_minor;
    enum mig_mode mig;
    int lost;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

/* Layouts as in nvml.h. */
typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

#define NVML_MEMORY_V2_VERSION ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

/* Handles point into this array, so they stay valid across re-reads of the file. */
static struct nvmlDevice_st devices[MAX_GPUS];
static unsigned int device_count;
static char driver_version[VERSION_LEN];
static int cuda_driver_version;
static nvmlReturn_t init_error;
static unsigned int init_refcount;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void config_path(char *out, size_t len) {
    Dl_info info;
    if (dladdr((void *)&config_path, &info) == 0 || info.dli_fname == NULL) {
        out[0] = '\0';
        return;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash == NULL) {
        snprintf(out, len, "fake-nvml.conf");
    } else {
        snprintf(out, len, "%.*s/fake-nvml.conf", (int)(slash - info.dli_fname), info.dli_fname);
    }
}

static enum mig_mode parse_mig(const char *word) {
    if (strcmp(word, "enabled") == 0) return MIG_ENABLED;
    if (strcmp(word, "disabled") == 0) return MIG_DISABLED;
    return MIG_UNSUPPORTED;
}

/* Reads the hardware description; a missing or malformed file is NVML_ERROR_UNKNOWN, with
 * the reason on stderr, so a broken test setup never looks like a deliberate driver error. */
static nvmlReturn_t load_config(void) {
    char path[PATH_MAX];
    config_path(path, sizeof path);
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        fprintf(stderr, "fake-nvml: cannot open %s\n", path);
        return NVML_ERROR_UNKNOWN;
    }
    device_count = 0;
    init_error = NVML_SUCCESS;
    cuda_driver_version = 0;
    snprintf(driver_version, sizeof driver_version, "0.0");

    char line[512];
    unsigned int line_no = 0;
    nvmlReturn_t result = NVML_SUCCESS;
    while (fgets(line, sizeof line, file) != NULL) {
        line_no++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#') continue;

        if (strncmp(line, "gpu ", 4) == 0) {
            if (device_count == MAX_GPUS) {
                fprintf(stderr, "fake-nvml: %s:%u: more than %d GPUs\n", path, line_no, MAX_GPUS);
                result = NVML_ERROR_UNKNOWN;
                break;
            }
            struct nvmlDevice_st *dev = &devices[device_count];
            char mig[16];
            int consumed = 0;
            if (sscanf(line, "gpu %llu %llu %d %d %15s %95s %n", &dev->total_mib, &dev->used_mib,
                       &dev->cc_major, &dev->cc_minor, mig, dev->uuid, &consumed) != 6 ||
                consumed == 0 || line[consumed] == '\0') {
                fprintf(stderr, "fake-nvml: %s:%u: malformed gpu line\n", path, line_no);
                result = NVML_ERROR_UNKNOWN;
                break;
            }
            snprintf(dev->name, sizeof dev->name, "%s", line + consumed);
            dev->mig = parse_mig(mig);
            dev->lost = 0;
            device_count++;
        } else if (strncmp(line, "lost ", 5) == 0) {
            unsigned int index;
            if (sscanf(line, "lost %u", &index) != 1 || index >= device_count) {
                fprintf(stderr, "fake-nvml: %s:%u: lost names no GPU listed above\n", path, line_no);
                result = NVML_ERROR_UNKNOWN;
                break;
            }
            devices[index].lost = 1;
        } else if (sscanf(line, "init_error %d", &init_error) == 1) {
        } else if (sscanf(line, "cuda_driver_version %d", &cuda_driver_version) == 1) {
        } else if (sscanf(line, "driver_version %79s", driver_version) == 1) {
        } else {
            fprintf(stderr, "fake-nvml: %s:%u: unknown entry\n", path, line_no);
            result = NVML_ERROR_UNKNOWN;
            break;
        }
    }
    fclose(file);
    return result;
}

/* Common prologue of every query: initialised, and the hardware as the file says now. */
static nvmlReturn_t begin_query(void) {
    pthread_mutex_lock(&lock);
    if (init_refcount == 0) return NVML_ERROR_UNINITIALIZED;
    return load_config();
}

static nvmlReturn_t end_query(nvmlReturn_t result) {
    pthread_mutex_unlock(&lock);
    return result;
}

static int valid_device(nvmlDevice_t device) {
    return device >= devices && device < devices + device_count;
}

/* Never more in use than installed, so free memory cannot wrap around. */
static unsigned long long used_bytes(const struct nvmlDevice_st *device) {
    unsigned long long used = device->used_mib < device->total_mib ? device->used_mib : device->total_mib;
    return used * MIB;
}

static nvmlReturn_t copy_string(char *out, unsigned int length, const char *value) {
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, value, strlen(value) + 1);
    return NVML_SUCCESS;
}

static nvmlReturn_t init(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t result = load_config();
    if (result == NVML_SUCCESS) result = init_error;
    if (result == NVML_SUCCESS) init_refcount++;
    pthread_mutex_unlock(&lock);
    return result;
}

nvmlReturn_t nvmlInit_v2(void) { return init(); }

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return init();
}

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t result = NVML_SUCCESS;
    if (init_refcount == 0) {
        result = NVML_ERROR_UNINITIALIZED;
    } else {
        init_refcount--;
    }
    pthread_mutex_unlock(&lock);
    return result;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    nvmlReturn_t result = begin_query();
    if (result == NVML_SUCCESS) result = copy_string(version, length, driver_version);
    return end_query(result);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    nvmlReturn_t result = begin_query();
    if (result == NVML_SUCCESS) {
        char nvml_version[VERSION_LEN + 16];
        /* Real NVML reports "<CUDA major>.<driver version>". */
        snprintf(nvml_version, sizeof nvml_version, "%d.%s", cuda_driver_version / 1000,
                 driver_version);
        result = copy_string(version, length, nvml_version);
    }
    return end_query(result);
}

static nvmlReturn_t cuda_version(int *version) {
    nvmlReturn_t result = begin_query();
    if (result == NVML_SUCCESS) {
        if (version == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else {
            *version = cuda_driver_version;
        }
    }
    return end_query(result);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) { return cuda_version(version); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) { return cuda_version(version); }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    nvmlReturn_t result = begin_query();
    if (result == NVML_SUCCESS) {
        if (count == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else {
            *count = device_count;
        }
    }
    return end_query(result);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t result = begin_query();
    if (result == NVML_SUCCESS) {
        if (device == NULL || index >= device_count) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else {
            *device = &devices[index];
        }
    }
    return end_query(result);
}

/* A GPU marked lost, or a handle past the current count, has "fallen off the bus". */
#define DEVICE_QUERY(device, body)                                                           \
    nvmlReturn_t result = begin_query();                                                       \
    if (result == NVML_SUCCESS) {                                                              \
        if (device < devices || device >= devices + MAX_GPUS) {                                \
            result = NVML_ERROR_INVALID_ARGUMENT;                                              \
        } else if (!valid_device(device) || device->lost) {                                    \
            result = NVML_ERROR_GPU_IS_LOST;                                                   \
        } else {                                                                               \
            body                                                                               \
        }                                                                                      \
    }                                                                                          \
    return end_query(result);

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    DEVICE_QUERY(device, {
        if (index == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else {
            *index = (unsigned int)(device - devices);
        }
    })
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    DEVICE_QUERY(device, { result = copy_string(name, length, device->name); })
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    DEVICE_QUERY(device, { result = copy_string(uuid, length, device->uuid); })
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    DEVICE_QUERY(device, {
        if (memory == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else {
            memory->total = device->total_mib * MIB;
            memory->used = used_bytes(device);
            memory->free = memory->total - memory->used;
        }
    })
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    DEVICE_QUERY(device, {
        if (memory == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else if (memory->version != NVML_MEMORY_V2_VERSION) {
            result = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        } else {
            memory->total = device->total_mib * MIB;
            memory->reserved = 0;
            memory->used = used_bytes(device);
            memory->free = memory->total - memory->used;
        }
    })
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    DEVICE_QUERY(device, {
        if (major == NULL || minor == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else {
            *major = device->cc_major;
            *minor = device->cc_minor;
        }
    })
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current,
                                  unsigned int *pending) {
    DEVICE_QUERY(device, {
        if (current == NULL || pending == NULL) {
            result = NVML_ERROR_INVALID_ARGUMENT;
        } else if (device->mig == MIG_UNSUPPORTED) {
            result = NVML_ERROR_NOT_SUPPORTED;
        } else {
            *current = device->mig == MIG_ENABLED ? 1 : 0;
            *pending = *current;
        }
    })
}
