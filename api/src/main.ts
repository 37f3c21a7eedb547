import { runService } from '@onnx-batch/shared';
import { startApiService } from './api-service';

runService('api', startApiService, 'requests in flight');
