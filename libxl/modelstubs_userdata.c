//go:build libxlmodel

/* modelstubs_userdata.c: weak definitions, for the contract-model build,
 * of the libxl calls behind userdata_cgo.go. Userdata is kept in process
 * memory per (domid, key), as libxl keeps one file per (domid, key), so
 * that ownership records can be exercised against the model's fake
 * domains. Core dump, rename and soft reset fail with ERROR_NI. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <libxl.h>

#define WEAK __attribute__((weak))

struct goxl_model_userdata {
    struct goxl_model_userdata *next;
    uint32_t domid;
    char *key;
    uint8_t *data;
    int len;
};

static pthread_mutex_t goxl_model_userdata_lock = PTHREAD_MUTEX_INITIALIZER;
static struct goxl_model_userdata *goxl_model_userdata_list;

static struct goxl_model_userdata **goxl_model_userdata_find(uint32_t domid, const char *key)
{
    struct goxl_model_userdata **p;
    for (p = &goxl_model_userdata_list; *p; p = &(*p)->next)
        if ((*p)->domid == domid && strcmp((*p)->key, key) == 0)
            return p;
    return p;
}

WEAK int libxl_userdata_store(libxl_ctx *ctx, uint32_t domid, const char *key,
                              const uint8_t *data, int len)
{
    struct goxl_model_userdata **p, *e;
    uint8_t *copy = malloc(len > 0 ? (size_t)len : 1);
    if (!copy)
        return ERROR_NOMEM;
    if (len > 0)
        memcpy(copy, data, (size_t)len);
    pthread_mutex_lock(&goxl_model_userdata_lock);
    p = goxl_model_userdata_find(domid, key);
    if (*p) {
        free((*p)->data);
        (*p)->data = copy;
        (*p)->len = len;
    } else if ((e = calloc(1, sizeof *e)) && (e->key = strdup(key))) {
        e->domid = domid;
        e->data = copy;
        e->len = len;
        *p = e;
    } else {
        free(e);
        free(copy);
        pthread_mutex_unlock(&goxl_model_userdata_lock);
        return ERROR_NOMEM;
    }
    pthread_mutex_unlock(&goxl_model_userdata_lock);
    return 0;
}

WEAK int libxl_userdata_retrieve(libxl_ctx *ctx, uint32_t domid, const char *key,
                                 uint8_t **data_r, int *len_r)
{
    struct goxl_model_userdata **p;
    int rc = 0;
    *data_r = NULL;
    *len_r = 0;
    pthread_mutex_lock(&goxl_model_userdata_lock);
    p = goxl_model_userdata_find(domid, key);
    if (*p && (*p)->len > 0) {
        *data_r = malloc((size_t)(*p)->len);
        if (*data_r) {
            memcpy(*data_r, (*p)->data, (size_t)(*p)->len);
            *len_r = (*p)->len;
        } else {
            rc = ERROR_NOMEM;
        }
    }
    pthread_mutex_unlock(&goxl_model_userdata_lock);
    return rc;
}

WEAK int libxl_userdata_unlink(libxl_ctx *ctx, uint32_t domid, const char *key)
{
    struct goxl_model_userdata **p, *e;
    pthread_mutex_lock(&goxl_model_userdata_lock);
    p = goxl_model_userdata_find(domid, key);
    if ((e = *p)) {
        *p = e->next;
        free(e->key);
        free(e->data);
        free(e);
    }
    pthread_mutex_unlock(&goxl_model_userdata_lock);
    return 0;
}

WEAK int libxl_domain_core_dump(libxl_ctx *ctx, uint32_t domid, const char *filename,
                                const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_rename(libxl_ctx *ctx, uint32_t domid, const char *old_name,
                             const char *new_name) { return ERROR_NI; }
WEAK int libxl_domain_soft_reset(libxl_ctx *ctx, libxl_domain_config *d_config, uint32_t domid,
                                 const libxl_asyncop_how *ao_how,
                                 const libxl_asyncprogress_how *aop_console_how) { return ERROR_NI; }
