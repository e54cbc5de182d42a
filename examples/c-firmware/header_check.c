/* hardmine.h's conventions under -std=c11 -Wall -Wextra -Werror -pedantic: the version macros,
 * and the size and alignment macros with C11 _Alignas and static_assert (no GCC attribute). */
#include <assert.h>
#include <stdalign.h>
#include "hardmine.h"

static_assert(HM_VERSION_MAJOR >= 0 && HM_VERSION_MINOR >= 0 && HM_VERSION_PATCH >= 0, "version macros");
static_assert(sizeof(HmGhmC) == HM_GHMC_SIZE && alignof(HmGhmC) == HM_GHMC_ALIGN, "HmGhmC");
static_assert(sizeof(HmGhmR) == HM_GHMR_SIZE && alignof(HmGhmR) == HM_GHMR_ALIGN, "HmGhmR");
static_assert(sizeof(HmRng) == HM_RNG_SIZE && alignof(HmRng) == HM_RNG_ALIGN, "HmRng");
static_assert(HM_STATUS_OK == 0 && HM_REDUCTION_MEAN == 2, "integer constants");

/* State in caller memory of the published size and alignment. */
static _Alignas(HM_GHMC_ALIGN) unsigned char ghmc_bytes[HM_GHMC_SIZE];
static _Alignas(HM_RNG_ALIGN) unsigned char rng_bytes[HM_RNG_SIZE];

int header_check(void);
int header_check(void) {
    HmStatus s = hm_ghmc_init_f32((HmGhmC *)(void *)ghmc_bytes, 10, 0.75f, 1.0f);
    return (int)s + (int)hm_rng_init((HmRng *)(void *)rng_bytes, 1);
}
