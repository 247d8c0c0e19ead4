/*
 * Preloaded before gcc's ASan runtime by native_asan.py fuzz: hands atheris's
 * coverage calls to the libFuzzer inside atheris, not to the ASan runtime.
 *
 * gcc's libasan.so exports do-nothing (weak) __sanitizer_cov_* functions.
 * Preloaded, it comes first in the global symbol scope, so the calls that
 * atheris's core_with_libfuzzer module makes to register its Python coverage
 * counters and to trace comparisons would bind to those and libFuzzer would
 * see no coverage at all ("Coverage symbols are being provided by a library
 * other than libFuzzer"). These definitions come first instead and forward
 * each call to the same function in the module named by LODEC_LIBFUZZER
 * (found with dlopen(RTLD_NOLOAD) + dlsym on first use; the module is already
 * loaded, it is the caller).  Forwarding is a tail call, so libFuzzer still
 * sees its caller's address.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *
target(const char *name)
{
    static void *module;
    if (module == NULL) {
        const char *path = getenv("LODEC_LIBFUZZER");
        module = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
        if (module == NULL) {
            fprintf(stderr, "libfuzzer_hooks: LODEC_LIBFUZZER (%s) is not loaded\n", path ? path : "unset");
            abort();
        }
    }
    void *fn = dlsym(module, name);
    if (fn == NULL) {
        fprintf(stderr, "libfuzzer_hooks: no %s in %s\n", name, getenv("LODEC_LIBFUZZER"));
        abort();
    }
    return fn;
}

#define FORWARD(name, params, args)                                 \
    void name params                                                \
    {                                                               \
        static void (*fn) params;                                   \
        if (fn == NULL)                                             \
            fn = (void (*) params)target(#name);                    \
        fn args;                                                    \
    }

FORWARD(__sanitizer_cov_8bit_counters_init, (uint8_t *a, uint8_t *b), (a, b))
FORWARD(__sanitizer_cov_pcs_init, (const uintptr_t *a, const uintptr_t *b), (a, b))
FORWARD(__sanitizer_cov_trace_cmp1, (uint8_t a, uint8_t b), (a, b))
FORWARD(__sanitizer_cov_trace_cmp2, (uint16_t a, uint16_t b), (a, b))
FORWARD(__sanitizer_cov_trace_cmp4, (uint32_t a, uint32_t b), (a, b))
FORWARD(__sanitizer_cov_trace_cmp8, (uint64_t a, uint64_t b), (a, b))
FORWARD(__sanitizer_cov_trace_const_cmp1, (uint8_t a, uint8_t b), (a, b))
FORWARD(__sanitizer_cov_trace_const_cmp2, (uint16_t a, uint16_t b), (a, b))
FORWARD(__sanitizer_cov_trace_const_cmp4, (uint32_t a, uint32_t b), (a, b))
FORWARD(__sanitizer_cov_trace_const_cmp8, (uint64_t a, uint64_t b), (a, b))
FORWARD(__sanitizer_cov_trace_switch, (uint64_t a, uint64_t *b), (a, b))
FORWARD(__sanitizer_cov_trace_div4, (uint32_t a), (a))
FORWARD(__sanitizer_cov_trace_div8, (uint64_t a), (a))
FORWARD(__sanitizer_cov_trace_gep, (uintptr_t a), (a))
FORWARD(__sanitizer_cov_trace_pc_indir, (uintptr_t a), (a))
