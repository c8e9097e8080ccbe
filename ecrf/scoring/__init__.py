"""Clinical scores and classification criteria computed from the raw eCRF answers.

Pure Python (standard library only, no Django): each module takes a mapping of the data
dictionary keys of ``scoring.md`` to raw answers and returns a frozen result dataclass.

* :mod:`.mrss`: modified Rodnan skin score;
* :mod:`.dlqi`: Dermatology Life Quality Index;
* :mod:`.haq`: HAQ-DI, pain and global VAS, Scleroderma HAQ scales;
* :mod:`.ssc2013`: 2013 ACR/EULAR classification criteria for systemic sclerosis;
* :mod:`.sle2019`: 2019 EULAR/ACR classification criteria for systemic lupus erythematosus.

Unknown keys and values outside the allowed set raise :class:`ScoringInputError` (a
``ValueError``); ``None`` or an absent key means "not answered".
"""

from . import dlqi, haq, mrss, sle2019, ssc2013
from .errors import ScoringInputError

__all__ = ["ScoringInputError", "dlqi", "haq", "mrss", "sle2019", "ssc2013"]
