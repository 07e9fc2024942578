#ifndef CHARGE_GATE_CHIREDIS_SHIM_H
#define CHARGE_GATE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
