// A small C face of the HDF5 library (Debian's libhdf5) for RobotData's robomimic/LIBERO
// export. HDF5's type constants are macros that call into the library, which Swift cannot
// import; these functions hide them. Ids are HDF5's hid_t (int64_t); negative means failure,
// with the library's message in chdf5_last_error().
#ifndef CHDF5_H
#define CHDF5_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Element types of datasets and attributes.
typedef enum {
    CHDF5_U8 = 0,
    CHDF5_I64 = 1,
    CHDF5_F32 = 2,
    CHDF5_F64 = 3,
    CHDF5_U64 = 4,
} chdf5_type;

/// Creates (truncates) a file; returns its id.
int64_t chdf5_file_create(const char *path);
/// Closes a file id.
int chdf5_file_close(int64_t file);
/// Creates a group under a file or group; returns its id.
int64_t chdf5_group_create(int64_t parent, const char *name);
int chdf5_group_close(int64_t group);
/// Writes a dataset of `rank` dims (row-major). `gzip_level` 0 stores it plain; 1–9 chunks
/// it by rows and deflates.
int chdf5_dataset_write(int64_t parent, const char *name, chdf5_type type, int rank, const uint64_t *dims,
                        const void *data, int gzip_level);
/// A scalar or 1-D numeric attribute of `count` elements (count 0: scalar).
int chdf5_attribute_write(int64_t object, const char *name, chdf5_type type, uint64_t count, const void *data);
/// A UTF-8 variable-length string attribute (what h5py writes for Python str).
int chdf5_attribute_write_string(int64_t object, const char *name, const char *value);
/// Opens a file read-only; returns its id.
int64_t chdf5_file_open(const char *path);
/// Opens an existing group; returns its id (close with chdf5_group_close).
int64_t chdf5_group_open(int64_t parent, const char *name);
/// 1 if `name` (a path relative to `parent`) exists, 0 if not, negative on error.
int chdf5_exists(int64_t parent, const char *name);
/// Number of links (members) in a group.
int chdf5_member_count(int64_t group, uint64_t *count);
/// Name of member `index` (by name order) into `buffer`; fails if it does not fit.
int chdf5_member_name(int64_t group, uint64_t index, char *buffer, uint64_t size);
/// 1 if member `name` is a group, 0 if a dataset (or other), negative on error.
int chdf5_is_group(int64_t parent, const char *name);
/// A dataset's rank and dims (at most 8).
int chdf5_dataset_shape(int64_t parent, const char *name, int *rank, uint64_t *dims);
/// Reads a whole dataset, converted by the library to `type` (e.g. float64 on disk as float32).
int chdf5_dataset_read(int64_t parent, const char *name, chdf5_type type, void *out);
/// 1 if the object has the attribute, 0 if not.
int chdf5_attribute_exists(int64_t object, const char *name);
/// Reads a numeric attribute's first element (scalar attributes) converted to `type`.
int chdf5_attribute_read(int64_t object, const char *name, chdf5_type type, void *out);
/// Reads a string attribute (variable or fixed length) into `buffer` (NUL-terminated).
int chdf5_attribute_read_string(int64_t object, const char *name, char *buffer, uint64_t size);
/// The library's most recent error message ("" if none).
const char *chdf5_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
