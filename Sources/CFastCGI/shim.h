#ifndef CHARGE_GATE_CFASTCGI_SHIM_H
#define CHARGE_GATE_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#endif
