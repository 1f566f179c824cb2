#include "textflag.h"

// func currentMemoryPages() int32
TEXT ·currentMemoryPages(SB), NOSPLIT, $0
	Get SP
	CurrentMemory
	I32Store ret+0(FP)
	RET
