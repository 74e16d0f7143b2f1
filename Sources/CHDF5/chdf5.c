#include "CHDF5.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

// Keeps the most specific message of HDF5's error stack instead of letting the library print it.
static herr_t remember_error(unsigned n, const H5E_error2_t *err, void *client) {
    (void)client;
    if (n == 0) snprintf(last_error, sizeof last_error, "%s: %s", err->func_name ? err->func_name : "hdf5", err->desc ? err->desc : "");
    return 0;
}

static void capture(void) {
    last_error[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, remember_error, NULL);
    H5Eclear2(H5E_DEFAULT);
}

// The automatic error printer is per thread in thread-safe builds (Debian's), so every call
// turns it off for its own thread.
static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static hid_t native(chdf5_type type) {
    switch (type) {
    case CHDF5_U8: return H5T_NATIVE_UINT8;
    case CHDF5_I64: return H5T_NATIVE_INT64;
    case CHDF5_F32: return H5T_NATIVE_FLOAT;
    case CHDF5_F64: return H5T_NATIVE_DOUBLE;
    case CHDF5_U64: return H5T_NATIVE_UINT64;
    }
    return -1;
}

const char *chdf5_last_error(void) { return last_error; }

int64_t chdf5_file_create(const char *path) {
    quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) capture();
    return f;
}

int chdf5_file_close(int64_t file) {
    herr_t r = H5Fclose(file);
    if (r < 0) capture();
    return r;
}

int64_t chdf5_group_create(int64_t parent, const char *name) {
    quiet();
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) capture();
    return g;
}

int chdf5_group_close(int64_t group) {
    herr_t r = H5Gclose(group);
    if (r < 0) capture();
    return r;
}

int chdf5_dataset_write(int64_t parent, const char *name, chdf5_type type, int rank, const uint64_t *dims,
                        const void *data, int gzip_level) {
    quiet();
    if (rank < 1 || rank > 8) { snprintf(last_error, sizeof last_error, "rank %d outside 1...8", rank); return -1; }
    hsize_t shape[8], chunk[8];
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) { shape[i] = dims[i]; chunk[i] = dims[i]; total *= dims[i]; }
    hid_t space = H5Screate_simple(rank, shape, NULL);
    hid_t props = H5Pcreate(H5P_DATASET_CREATE);
    // Deflate needs chunks; one step (row) per chunk keeps random access by step cheap.
    if (gzip_level > 0 && total > 0) {
        chunk[0] = 1;
        H5Pset_chunk(props, rank, chunk);
        H5Pset_deflate(props, (unsigned)gzip_level);
    }
    hid_t set = H5Dcreate2(parent, name, native(type), space, H5P_DEFAULT, props, H5P_DEFAULT);
    herr_t r = set < 0 ? -1 : H5Dwrite(set, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (set < 0 || r < 0) capture();
    if (set >= 0) H5Dclose(set);
    H5Pclose(props);
    H5Sclose(space);
    return set < 0 ? -1 : r;
}

int chdf5_attribute_write(int64_t object, const char *name, chdf5_type type, uint64_t count, const void *data) {
    quiet();
    hsize_t n = count;
    hid_t space = count == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t attr = H5Acreate2(object, name, native(type), space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = attr < 0 ? -1 : H5Awrite(attr, native(type), data);
    if (attr < 0 || r < 0) capture();
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return attr < 0 ? -1 : r;
}

int chdf5_attribute_write_string(int64_t object, const char *name, const char *value) {
    quiet();
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t r = attr < 0 ? -1 : H5Awrite(attr, type, &value);
    if (attr < 0 || r < 0) capture();
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return attr < 0 ? -1 : r;
}

int64_t chdf5_file_open(const char *path) {
    quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) capture();
    return f;
}

int64_t chdf5_group_open(int64_t parent, const char *name) {
    quiet();
    hid_t g = H5Gopen2(parent, name, H5P_DEFAULT);
    if (g < 0) capture();
    return g;
}

int chdf5_exists(int64_t parent, const char *name) {
    quiet();
    htri_t r = H5Lexists(parent, name, H5P_DEFAULT);
    if (r < 0) capture();
    return r;
}

int chdf5_member_count(int64_t group, uint64_t *count) {
    quiet();
    H5G_info_t info;
    herr_t r = H5Gget_info(group, &info);
    if (r < 0) { capture(); return r; }
    *count = info.nlinks;
    return 0;
}

int chdf5_member_name(int64_t group, uint64_t index, char *buffer, uint64_t size) {
    quiet();
    ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, buffer, size, H5P_DEFAULT);
    if (n < 0) { capture(); return -1; }
    if ((uint64_t)n >= size) { snprintf(last_error, sizeof last_error, "member name longer than %llu bytes", (unsigned long long)size); return -1; }
    return 0;
}

int chdf5_is_group(int64_t parent, const char *name) {
    quiet();
    H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
    herr_t r = H5Oget_info_by_name3(parent, name, &info, H5O_INFO_BASIC, H5P_DEFAULT);
#else
    herr_t r = H5Oget_info_by_name2(parent, name, &info, H5O_INFO_BASIC, H5P_DEFAULT);
#endif
    if (r < 0) { capture(); return -1; }
    return info.type == H5O_TYPE_GROUP ? 1 : 0;
}

int chdf5_dataset_shape(int64_t parent, const char *name, int *rank, uint64_t *dims) {
    quiet();
    hid_t set = H5Dopen2(parent, name, H5P_DEFAULT);
    if (set < 0) { capture(); return -1; }
    hid_t space = H5Dget_space(set);
    int n = H5Sget_simple_extent_ndims(space);
    int status = 0;
    if (n < 0 || n > 8) { snprintf(last_error, sizeof last_error, "%s: rank %d outside 0...8", name, n); status = -1; }
    else {
        hsize_t shape[8];
        H5Sget_simple_extent_dims(space, shape, NULL);
        for (int i = 0; i < n; i++) dims[i] = shape[i];
        *rank = n;
    }
    H5Sclose(space);
    H5Dclose(set);
    return status;
}

int chdf5_dataset_read(int64_t parent, const char *name, chdf5_type type, void *out) {
    quiet();
    hid_t set = H5Dopen2(parent, name, H5P_DEFAULT);
    if (set < 0) { capture(); return -1; }
    herr_t r = H5Dread(set, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    if (r < 0) capture();
    H5Dclose(set);
    return r;
}

int chdf5_attribute_exists(int64_t object, const char *name) {
    quiet();
    htri_t r = H5Aexists(object, name);
    if (r < 0) capture();
    return r;
}

int chdf5_attribute_read(int64_t object, const char *name, chdf5_type type, void *out) {
    quiet();
    hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
    if (attr < 0) { capture(); return -1; }
    hid_t space = H5Aget_space(attr);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    herr_t r;
    if (n == 1) {
        r = H5Aread(attr, native(type), out);
        if (r < 0) capture();
    } else {
        snprintf(last_error, sizeof last_error, "attribute %s has %lld elements, expected 1", name, (long long)n);
        r = -1;
    }
    H5Sclose(space);
    H5Aclose(attr);
    return r;
}

int chdf5_attribute_read_string(int64_t object, const char *name, char *buffer, uint64_t size) {
    quiet();
    hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
    if (attr < 0) { capture(); return -1; }
    hid_t stored = H5Aget_type(attr);
    int status = 0;
    if (H5Tget_class(stored) != H5T_STRING) {
        snprintf(last_error, sizeof last_error, "attribute %s is not a string", name);
        status = -1;
    } else if (H5Tis_variable_str(stored) > 0) {
        hid_t memory = H5Tcopy(H5T_C_S1);
        H5Tset_size(memory, H5T_VARIABLE);
        H5Tset_cset(memory, H5Tget_cset(stored));
        char *value = NULL;
        if (H5Aread(attr, memory, &value) < 0) { capture(); status = -1; }
        else if (value == NULL || strlen(value) + 1 > size) {
            snprintf(last_error, sizeof last_error, "attribute %s: %s", name, value ? "longer than the buffer" : "null");
            status = -1;
        } else memcpy(buffer, value, strlen(value) + 1);
        if (value) H5free_memory(value);
        H5Tclose(memory);
    } else {
        size_t length = H5Tget_size(stored);
        if (length + 1 > size) { snprintf(last_error, sizeof last_error, "attribute %s longer than the buffer", name); status = -1; }
        else {
            hid_t memory = H5Tcopy(H5T_C_S1);
            H5Tset_size(memory, length + 1);  // room for the terminator whatever the padding
            H5Tset_strpad(memory, H5T_STR_NULLTERM);
            if (H5Aread(attr, memory, buffer) < 0) { capture(); status = -1; }
            H5Tclose(memory);
        }
    }
    H5Tclose(stored);
    H5Aclose(attr);
    return status;
}
