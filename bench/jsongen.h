/* JSON-like text for the compressed workloads: what an application's event stream looks like
 * (the same keys in every record, values that vary), so compressors find what they would
 * find in real traffic, neither a repeating pattern nor noise. */
#ifndef WSLOAD_JSONGEN_H
#define WSLOAD_JSONGEN_H

#include <stddef.h>
#include <stdint.h>

/* The id's place in a JSON message: {"id":"<ID_MAX hex digits>","events":[...]} */
#define JSON_ID_OFF 7
#define JSON_MIN_SIZE 64

/* Writes exactly size (>= JSON_MIN_SIZE) bytes: an object whose "id" string holds id_len
 * '0's at JSON_ID_OFF (overwritten per message), then an "events" array of records with
 * random values, the last one cut short at a field boundary, and spaces before the closing
 * "]}" for the few bytes no field fits in. */
void json_fill(uint8_t *out, size_t size, size_t id_len, uint64_t *rng);

#endif
