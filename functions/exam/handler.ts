// exam: HIS → front. Exam reports and their items (emrExClinical, emrExClinicalItem), T+0.
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('exam') });
