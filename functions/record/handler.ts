// record: HIS → front. Clinical records: outpatient, observation, admission, progress notes, front page, discharge, vital signs (T+0 / T+1).
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('record') });
